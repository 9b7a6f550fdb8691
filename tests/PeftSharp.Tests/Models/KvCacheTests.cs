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
    public void IncrementalDecoding_MatchesFullForward(string type, DType dtype)
    {
        var c = TinyModels.Config(type, tied: type == "qwen3");
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
