using PeftSharp.Models;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Models;

/// <summary>
/// Whole-model backward checked against finite differences of the float32 model's loss (directional derivatives,
/// loss accumulated in double). Kernel-level float64 checks live with the kernels; this proves the wiring.
/// </summary>
public class CausalLMGradientTests
{
    static (int[] ids, int[] pos, int[] seg, int[] tgt) Batch(ModelConfig c, int batch, int seq, int seed, bool packed)
    {
        var rng = new Random(seed);
        int n = batch * seq;
        var ids = TinyModels.RandomIds(rng, n, c.VocabSize);
        var pos = new int[n]; var seg = packed ? new int[n] : []; var tgt = new int[n];
        for (int b = 0; b < batch; b++)
        {
            int split = packed ? seq / 2 - 1 : seq;
            for (int t = 0; t < seq; t++)
            {
                int i = b * seq + t;
                bool second = t >= split;
                pos[i] = second ? t - split : t;
                if (packed) seg[i] = second ? 1 : 0;
                bool last = t == seq - 1 || (packed && t == split - 1);
                tgt[i] = last || t % 5 == 3 ? -100 : ids[i + 1];
            }
        }
        return (ids, pos, seg, tgt);
    }

    static double Loss(CausalLM m, int batch, int seq, (int[] ids, int[] pos, int[] seg, int[] tgt) b)
    {
        using var pass = Passes.Model(m, batch, seq, recompute: false);
        return pass.Loss(b.ids, b.pos, b.seg, b.tgt).LossSum;
    }

    [Theory]
    [InlineData("llama", false, false)]
    [InlineData("llama", true, true)]
    [InlineData("qwen2", false, true)]
    [InlineData("qwen3", true, false)]
    [InlineData("mistral", false, false, 3)]  // sliding window shorter than the sequence
    [InlineData("mistral", false, true, 4)]   // … with packing
    [InlineData("phi3", false, true, 5)]      // fused projections, window, packing
    [InlineData("gemma2", true, true, 4)]     // (1 + w) and sandwich norms, GeGLU, soft caps, √C embedding scale, tied
    [InlineData("gemma3_text", true, false, 3)] // q/k norms, local/global RoPE
    [InlineData("gemma3_text", false, true, 0)]
    public void FullFineTuning_GradientsMatchFiniteDifferences(string type, bool tied, bool packed, int window = 0)
    {
        var c = TinyModels.Config(type, tied) with { SlidingWindow = window > 0 ? window : null };
        var w = TinyModels.Weights(c, 11);
        using var m = TinyModels.Build(c, w);
        m.MakeFullyTrainable();
        const int B = 2, T = 12;
        var batch = Batch(c, B, T, 5, packed);
        using (var pass = Passes.Model(m, B, T, recompute: false))
            pass.ForwardBackward(batch.ids, batch.pos, batch.seg, batch.tgt, gradScale: 1f);

        var rng = new Random(3);
        var parameters = m.TrainableParameters().ToList();
        Assert.Contains(parameters, p => p.Name.EndsWith("o_proj.weight"));
        // Directional derivative along a random direction u over all parameters: g·u vs (L(θ+εu) − L(θ−εu)) / 2ε.
        var dirs = parameters.Select(p => Numerics.RandomFloats(rng, (int)p.Count)).ToList();
        double analytic = 0;
        for (int i = 0; i < parameters.Count; i++)
        {
            var g = parameters[i].Grad.Floats;
            for (int j = 0; j < g.Length; j++) analytic += g[j] * dirs[i][j];
        }
        const float eps = 1e-3f;
        void Shift(float s)
        {
            for (int i = 0; i < parameters.Count; i++)
            {
                var v = parameters[i].Value.Floats;
                for (int j = 0; j < v.Length; j++) v[j] += s * dirs[i][j];
            }
        }
        Shift(eps); double plus = Loss(m, B, T, batch);
        Shift(-2 * eps); double minus = Loss(m, B, T, batch);
        Shift(eps);
        double numeric = (plus - minus) / (2 * eps);
        Assert.True(Math.Abs(analytic) > 1e-3, $"degenerate check: analytic directional derivative {analytic}");
        double rel = Math.Abs(analytic - numeric) / Math.Abs(numeric);
        Assert.True(rel < 2e-2, $"{type}: analytic {analytic} vs numeric {numeric} (rel {rel:E2})");
    }

    [Fact]
    public void FrozenModel_InputGradientsFlowThroughFrozenWeights()
    {
        var c = TinyModels.Config("llama");
        var w = TinyModels.Weights(c, 21);
        using var m = TinyModels.Build(c, w);
        Assert.Empty(m.TrainableParameters());
        const int B = 1, T = 10;
        var batch = Batch(c, B, T, 9, packed: false);
        float[] dx;
        using (var pass = Passes.Model(m, B, T, recompute: false))
        {
            pass.ForwardBackward(batch.ids, batch.pos, batch.seg, batch.tgt, 1f);
            dx = pass.LastInputGradient!.Floats.ToArray();
        }
        // Perturb the embedding rows the batch uses: dL = Σ_i dx[i]·u[ids[i]].
        var embed = w[WeightNames.Embed].Floats;
        var rng = new Random(4);
        var u = Numerics.RandomFloats(rng, embed.Length);
        double analytic = 0;
        for (int i = 0; i < B * T; i++)
            for (int k = 0; k < c.HiddenSize; k++) analytic += dx[i * c.HiddenSize + k] * u[batch.ids[i] * c.HiddenSize + k];
        // Tied=false, so the embedding only feeds the input side.
        const float eps = 1e-3f;
        for (int j = 0; j < embed.Length; j++) embed[j] += eps * u[j];
        double plus = Loss(m, B, T, batch);
        for (int j = 0; j < embed.Length; j++) embed[j] -= 2 * eps * u[j];
        double minus = Loss(m, B, T, batch);
        double numeric = (plus - minus) / (2 * eps);
        Assert.True(Math.Abs(numeric) > 1e-4, "degenerate check");
        Assert.True(Math.Abs(analytic - numeric) / Math.Abs(numeric) < 2e-2, $"analytic {analytic} vs numeric {numeric}");
    }

    [Fact]
    public void Recompute_GivesIdenticalGradients()
    {
        var c = TinyModels.Config("qwen3");
        float[][] Run(bool recompute)
        {
            var w = TinyModels.Weights(c, 31);
            using var m = TinyModels.Build(c, w);
            m.MakeFullyTrainable();
            var b = Batch(c, 2, 9, 1, packed: true);
            using var pass = Passes.Model(m, 2, 9, recompute);
            pass.ForwardBackward(b.ids, b.pos, b.seg, b.tgt, 0.5f);
            var r = m.TrainableParameters().Select(p => p.Grad.Floats.ToArray()).ToArray();
            foreach (var t in w.Values) t.Dispose();
            return r;
        }
        var a = Run(false);
        var b = Run(true);
        Assert.Equal(a.Length, b.Length);
        Assert.Contains(a, g => g.Any(x => x != 0));
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i]);
    }

    [Fact]
    public void PackedSequences_DoNotLeak()
    {
        // Two examples packed into one row give the same losses as each alone in its own row.
        var c = TinyModels.Config("llama");
        var w = TinyModels.Weights(c, 41);
        using var m = TinyModels.Build(c, w);
        var rng = new Random(2);
        int[] e1 = TinyModels.RandomIds(rng, 7, c.VocabSize), e2 = TinyModels.RandomIds(rng, 9, c.VocabSize);
        int[] Targets(int[] e) => e.Skip(1).Append(-100).ToArray();
        double Alone(int[] e)
        {
            using var p = Passes.Model(m, 1, e.Length, false);
            return p.Loss(e, Enumerable.Range(0, e.Length).ToArray(), [], Targets(e)).LossSum;
        }
        var ids = e1.Concat(e2).ToArray();
        var pos = Enumerable.Range(0, 7).Concat(Enumerable.Range(0, 9)).ToArray();
        var seg = Enumerable.Repeat(0, 7).Concat(Enumerable.Repeat(1, 9)).ToArray();
        using var packed = Passes.Model(m, 1, 16, false);
        double both = packed.Loss(ids, pos, seg, Targets(e1).Concat(Targets(e2)).ToArray()).LossSum;
        Assert.Equal(Alone(e1) + Alone(e2), both, 1e-4);
    }
}
