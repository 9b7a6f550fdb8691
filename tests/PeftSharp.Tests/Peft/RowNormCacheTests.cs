using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Peft;

/// <summary>DoRA's row norms ‖W + s·B·A‖² are reused only while A, B and W are what they were computed from.</summary>
public class RowNormCacheTests
{
    const int Out = 6, In = 10, R = 3;

    static (LoraLinear m, LoraAdapter ad, Linear lin) Module()
    {
        var rng = new Random(4);
        var w = new Tensor(DType.F32, Out, In);
        var wf = w.Floats;
        for (int i = 0; i < wf.Length; i++) wf[i] = (float)(rng.NextDouble() - 0.5);
        var lin = new Linear("model.layers.0.self_attn.q_proj", w, null);
        lin.OwnWeight();
        var m = new LoraLinear(lin, 0);
        var ad = new LoraAdapter(lin.Name, In, Out, R, 6f, false, 0f, true);
        LoraInit.Initialize(ad, "gaussian", 3);
        for (int i = 0; i < ad.B.Value.Floats.Length; i++) ad.B.Value.Floats[i] = 0.05f * (i % 5 - 2);
        m.Add("default", ad);
        return (m, ad, lin);
    }

    static double[] Naive(Linear lin, LoraAdapter ad)
    {
        var w = new float[Out * In];
        lin.ReadRows(TestCompute.Cpu, 0, Out, w);
        var d = LoraMath.Delta(ad);
        return Enumerable.Range(0, Out).Select(o => Enumerable.Range(0, In).Sum(i => Math.Pow(w[o * In + i] + d[o * In + i], 2))).ToArray();
    }

    static void Near(double[] want, double[] got)
    {
        for (int o = 0; o < Out; o++) Assert.True(Math.Abs(want[o] - got[o]) <= 1e-5 * want[o], $"row {o}: {got[o]} vs {want[o]}");
    }

    [Fact]
    public void Unchanged_factors_give_the_same_bits_and_changed_ones_are_recomputed()
    {
        var (m, ad, lin) = Module();
        using var owner = m;
        var first = m.RowNormsSquared(TestCompute.Cpu, ad);
        Near(Naive(lin, ad), first);
        Assert.Equal(first, m.RowNormsSquared(TestCompute.Cpu, ad));

        ad.B.Value.Floats[4] += 0.25f;                      // an optimizer step on B
        Near(Naive(lin, ad), m.RowNormsSquared(TestCompute.Cpu, ad));
        ad.A.Value.Floats[7] -= 0.5f;                       // and on A
        Near(Naive(lin, ad), m.RowNormsSquared(TestCompute.Cpu, ad));
    }

    [Fact]
    public void Rewriting_the_base_invalidates_the_norms()
    {
        var (m, ad, lin) = Module();
        using var owner = m;
        _ = m.RowNormsSquared(TestCompute.Cpu, ad);
        // Merging another adapter rewrites W.
        var other = new LoraAdapter(lin.Name, In, Out, R, 6f, false, 0f, false);
        LoraInit.Initialize(other, "gaussian", 9);
        for (int i = 0; i < other.B.Value.Floats.Length; i++) other.B.Value.Floats[i] = 0.1f * (i % 3 - 1);
        m.Add("other", other);
        m.Merge(TestCompute.Cpu, "other");
        Near(Naive(lin, ad), m.RowNormsSquared(TestCompute.Cpu, ad));
        m.Unmerge(TestCompute.Cpu, "other");
        Near(Naive(lin, ad), m.RowNormsSquared(TestCompute.Cpu, ad));
    }
}
