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
    [InlineData("mistral", DType.F32, 1)]    // a window of one: each token attends only to itself
    [InlineData("qwen2", DType.F32, 2, 1)]   // layer 0 full, layer 1 windowed
    public void IncrementalDecoding_MatchesFullForward(string type, DType dtype, int window = 0, int maxWindowLayers = 0)
    {
        var c = TinyModels.Config(type, tied: type == "qwen3") with { SlidingWindow = window > 0 ? window : null, MaxWindowLayers = maxWindowLayers };
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
        unsafe { fixed (float* lp = viaPass) LmHead.Logits(TestCompute.Cpu.Backend, m.LmHead, (float*)pass.FinalHidden.Data, T, m.Config.HiddenSize, lp); }
        Numerics.AssertClose(viaPass, full.Select(x => (double)x).ToArray(), 1e-5, "training path vs inference path");
    }

    [Fact]
    public void SlidingWindowLayers_KeepOnlyTheirWindow_AndLongPrefillsAreAttendedInPieces()
    {
        // qwen2 with max_window_layers 1: layer 0 full attention, layer 1 a window of 3 (a buffer of 2 + 3 rows).
        var c = TinyModels.Config("qwen2") with { SlidingWindow = 3, MaxWindowLayers = 1 };
        int rowBytes = 2 * c.NumKvHeads * c.HeadDim * sizeof(float);
        Assert.Equal(5, SlidingKvBuffer.RowsFor(3));
        using (var cache = new KvCacheAttention(c, 64))
        {
            Assert.Equal((64L + 5) * rowBytes, cache.Bytes);
            Assert.Equal(cache.Bytes, KvCacheAttention.BytesFor(c, 64));
        }
        // A capacity within the buffer size keeps the plain layout (nothing to save).
        using (var small = new KvCacheAttention(c, 4)) Assert.Equal(2L * 4 * rowBytes, small.Bytes);
        Assert.Equal(2L * 4 * rowBytes, KvCacheAttention.BytesFor(c, 4));

        var w = TinyModels.Weights(c, 31);
        using var m = TinyModels.Build(c, w);
        var ids = TinyModels.RandomIds(new Random(2), 30, c.VocabSize);
        int V = c.VocabSize;
        // The training path's batch attention (its own window mask, no cache) is the yardstick.
        using var pass = Passes.Model(m, 1, ids.Length, false);
        pass.Forward(ids, Enumerable.Range(0, ids.Length).ToArray(), [], training: false);
        var full = new float[ids.Length * V];
        unsafe { fixed (float* lp = full) LmHead.Logits(TestCompute.Cpu.Backend, m.LmHead, (float*)pass.FinalHidden.Data, ids.Length, c.HiddenSize, lp); }
        // A 20-token prefill (longer than the 3-row slack) then single tokens, then a reset and the same again.
        using var s = Passes.Session(m, 64);
        for (int round = 0; round < 2; round++)
        {
            var inc = new float[ids.Length * V];
            s.Reset();
            s.Feed(ids.AsSpan(0, 20), Span<float>.Empty, inc.AsSpan(0, 20 * V));
            for (int t = 20; t < ids.Length; t++) s.Feed(ids.AsSpan(t, 1), inc.AsSpan(t * V, V));
            Numerics.AssertClose(inc, full.Select(x => (double)x).ToArray(), 1e-5, $"round {round}: windowed cache vs full forward");
        }
        Assert.Equal((64L + 5) * rowBytes, s.CacheBytes);
        foreach (var t in w.Values) t.Dispose();
    }

    [Fact]
    public void Phi3MiniCache_KeepsTheWindowOnEveryLayer_AndCalcReportsIt()
    {
        var c = ModelConfig.Load(PeftSharp.Tests.IO.IoTestPaths.ModelConfig("phi-3-mini-4k-instruct.json"));
        long row = 2L * 32 * 3072 * sizeof(float);                 // K and V of one position, all 32 layers
        Assert.Equal(row * (2046 + 256), KvCacheAttention.BytesFor(c, 4096));   // window 2047: 2046 kept + 256 slack
        Assert.Equal(row * 1000, KvCacheAttention.BytesFor(c, 1000));          // shorter than the buffer: as many rows
        var text = new PeftSharp.Planning.CalcReport(c, "phi3.json", new PeftSharp.Planning.CalcRequest()).ToText();
        Assert.Contains("generation KV cache (float32, one sequence of 4,096 tokens): 1726.5 MiB", text);
        Assert.Contains("3072.0 MiB if every layer kept every position", text);
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
