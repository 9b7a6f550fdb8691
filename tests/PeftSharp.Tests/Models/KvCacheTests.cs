using PeftSharp.Inference;
using PeftSharp.Models;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Models;

public class KvCacheTests
{
    [Theory]
    [InlineData("llama", DType.F32)]
    [InlineData("qwen2", DType.BF16)]
    [InlineData("qwen3", DType.F16)]
    [InlineData("mistral", DType.BF16)]
    [InlineData("mistral", DType.F32, 4)]    // sliding window shorter than the prefill
    [InlineData("mistral", DType.F32, 7)]    // longer than the prefill, shorter than the sequence
    [InlineData("mistral", DType.F32, 100)]  // longer than the sequence
    [InlineData("phi3", DType.BF16)]          // fused qkv_proj / gate_up_proj
    [InlineData("phi3", DType.F32, 3)]
    [InlineData("gemma2", DType.BF16)]        // soft caps, (1 + w) norms, sandwich norms, GeGLU
    [InlineData("gemma2", DType.F32, 4)]      // window on layer 0 shorter than the prefill
    [InlineData("gemma2", DType.F32, 100)]    // longer than the sequence
    [InlineData("gemma3_text", DType.F16, 7)] // q/k norms, local/global RoPE, window between prefill and sequence
    [InlineData("gemma3_text", DType.F32, 3)]
    public void IncrementalDecoding_MatchesFullForward(string type, DType dtype, int window = 0)
    {
        var c = TinyModels.Config(type, tied: type == "qwen3") with { SlidingWindow = window > 0 ? window : null };
        var w = TinyModels.Weights(c, 17, dtype);
        using var m = TinyModels.Build(c, w);
        var rng = new Random(8);
        const int T = 23;
        var ids = TinyModels.RandomIds(rng, T, c.VocabSize);
        int V = c.VocabSize;

        // Full forward: every position's logits in one pass.
        var full = new float[T * V];
        using (var s = Passes.Session(m, 64)) s.Feed(ids, Span<float>.Empty, full);

        // Incremental: a prefill of 5 tokens, then one token at a time.
        var inc = new float[T * V];
        using (var s = Passes.Session(m, 64))
        {
            s.Feed(ids.AsSpan(0, 5), Span<float>.Empty, inc.AsSpan(0, 5 * V));
            for (int t = 5; t < T; t++) s.Feed(ids.AsSpan(t, 1), inc.AsSpan(t * V, V));
            Assert.Equal(T, s.Length);
        }
        Numerics.AssertClose(inc, full.Select(x => (double)x).ToArray(), 1e-5, "incremental vs full logits");

        // And the training path's final hidden states give the same logits.
        using var pass = Passes.Model(m, 1, T, false);
        pass.Forward(ids, Enumerable.Range(0, T).ToArray(), [], training: false);
        var viaPass = new float[T * V];
        unsafe { fixed (float* lp = viaPass) LmHead.Logits(TestCompute.Cpu.Backend, m.LmHead, (float*)pass.FinalHidden.Data, T, m.Config.HiddenSize, lp, m.Config.LogitSoftcap); }
        Numerics.AssertClose(viaPass, full.Select(x => (double)x).ToArray(), 1e-5, "training path vs inference path");
    }

    [Fact]
    public void SlidingWindow_ChangesLogitsOnlyBeyondTheWindow_AndQwenKeepsLowLayersFull()
    {
        var full = TinyModels.Config("mistral") with { SlidingWindow = null };
        var w = TinyModels.Weights(full, 23);
        var ids = TinyModels.RandomIds(new Random(3), 12, full.VocabSize);
        float[] Logits(ModelConfig c)
        {
            using var m = TinyModels.Build(c, w);
            return Passes.Logits(m, ids);
        }
        int V = full.VocabSize;
        var a = Logits(full);
        var b = Logits(full with { SlidingWindow = 5 });
        // Positions 0…4 see at most 5 keys in every layer: identical; position 5 loses key 0.
        Assert.Equal(a.AsSpan(0, 5 * V).ToArray(), b.AsSpan(0, 5 * V).ToArray());
        Assert.NotEqual(a.AsSpan(5 * V, V).ToArray(), b.AsSpan(5 * V, V).ToArray());

        // Qwen2: layers below max_window_layers keep full attention (Qwen2Config's layer_types rule).
        var q = TinyModels.Config("qwen2") with { SlidingWindow = 5, MaxWindowLayers = 2 };
        Assert.Equal([0, 0], Enumerable.Range(0, q.NumLayers).Select(q.AttentionWindow));
        Assert.Equal([0, 5], Enumerable.Range(0, q.NumLayers).Select((q with { MaxWindowLayers = 1 }).AttentionWindow));
        Assert.Equal([5, 0], Enumerable.Range(0, q.NumLayers).Select((q with { SlidingLayerTypes = [true, false] }).AttentionWindow));
    }

    [Fact]
    public void Feed_BeyondCapacity_IsAClearError()
    {
        var c = TinyModels.Config();
        using var m = TinyModels.Build(c, TinyModels.Weights(c, 1));
        using var s = Passes.Session(m, 4);
        var logits = new float[c.VocabSize];
        s.Feed([1, 2, 3], logits);
        var e = Assert.Throws<PeftException>(() => s.Feed([4, 5], logits));
        Assert.Contains("beyond", e.Message);
    }
}
