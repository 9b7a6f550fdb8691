using PeftSharp.Tests.TestSupport;
using PeftSharp.Optim;
using PeftSharp.Tensors;

namespace PeftSharp.Tests.Optim;

public class AdamWTests
{
    [Fact]
    public void Torch_flavor_matches_a_hand_computed_two_step_example()
    {
        // p0 = [1, -2], g1 = [0.5, -1], g2 = [0.1, 0.3]; lr 0.1, β (0.9, 0.999), ε 1e-8, wd 0.1
        double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
        double[] p = [1, -2], m = [0, 0], v = [0, 0];
        double[][] grads = [[0.5, -1], [0.1, 0.3]];
        var opt = new AdamW(TestCompute.Cpu) { Beta1 = 0.9f, Beta2 = 0.999f, Eps = 1e-8f, WeightDecay = 0.1f };
        float[] pf = [1f, -2f];
        for (int t = 1; t <= 2; t++)
        {
            var g = grads[t - 1];
            for (int i = 0; i < 2; i++)
            {
                p[i] *= 1 - lr * wd;
                m[i] = b1 * m[i] + (1 - b1) * g[i];
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
                double mh = m[i] / (1 - Math.Pow(b1, t)), vh = v[i] / (1 - Math.Pow(b2, t));
                p[i] -= lr * mh / (Math.Sqrt(vh) + eps);
            }
            opt.BeginStep();
            opt.Step(0, pf, g.Select(x => (float)x).ToArray(), (float)lr);
        }
        // step 1 moves each weight by lr·sign(g) (after decay): 1·0.99 − 0.1 = 0.89; −2·0.99 + 0.1 = −1.88
        Assert.Equal(2, opt.StepCount);
        for (int i = 0; i < 2; i++) Assert.Equal(p[i], pf[i], 5e-6);
        Assert.Equal(0.89 * 0.99, p[0] + 0.1 * (0.9 * 0.05 + 0.01) / 0.19 / (Math.Sqrt((0.999 * 0.00025 + 0.001 * 0.01) / (1 - 0.999 * 0.999)) + 1e-8), 1e-7);
    }

    [Fact]
    public void Bitsandbytes_flavor_decays_after_the_update_and_stays_within_lr_squared_of_torch()
    {
        var rng = new Random(1);
        var p0 = TestSupport.Numerics.RandomFloats(rng, 50);
        var pt = (float[])p0.Clone();
        var pb = (float[])p0.Clone();
        var torch = new AdamW(TestCompute.Cpu) { WeightDecay = 0.1f };
        var bnb = new AdamW(TestCompute.Cpu) { WeightDecay = 0.1f, Flavor = AdamWFlavor.Bitsandbytes };
        float lr = 1e-3f;
        for (int t = 0; t < 5; t++)
        {
            var g = TestSupport.Numerics.RandomFloats(rng, 50);
            torch.BeginStep(); torch.Step(0, pt, g, lr);
            bnb.BeginStep(); bnb.Step(0, pb, g, lr);
        }
        double maxDiff = 0;
        for (int i = 0; i < 50; i++) maxDiff = Math.Max(maxDiff, Math.Abs(pt[i] - pb[i]));
        Assert.True(maxDiff > 0, "the flavors should differ (decay order)");
        Assert.True(maxDiff < 5 * lr * lr * 0.1 * 2 + 1e-6, $"max diff {maxDiff}");
    }

    [Fact]
    public void State_save_and_load_continue_identically()
    {
        var rng = new Random(2);
        var p = TestSupport.Numerics.RandomFloats(rng, 30);
        var q = TestSupport.Numerics.RandomFloats(rng, 7);
        var a = new AdamW(TestCompute.Cpu);
        var gs = Enumerable.Range(0, 6).Select(_ => (TestSupport.Numerics.RandomFloats(rng, 30), TestSupport.Numerics.RandomFloats(rng, 7))).ToArray();
        for (int t = 0; t < 3; t++) { a.BeginStep(); a.Step(0, p, gs[t].Item1, 0.01f); a.Step(1, q, gs[t].Item2, 0.01f); }
        var saved = a.SaveState();
        var b = new AdamW(TestCompute.Cpu);
        b.LoadState(saved, "ckpt/optimizer.safetensors");
        foreach (var t in saved.Values) t.Dispose();
        var p2 = (float[])p.Clone();
        var q2 = (float[])q.Clone();
        for (int t = 3; t < 6; t++)
        {
            a.BeginStep(); a.Step(0, p, gs[t].Item1, 0.01f); a.Step(1, q, gs[t].Item2, 0.01f);
            b.BeginStep(); b.Step(0, p2, gs[t].Item1, 0.01f); b.Step(1, q2, gs[t].Item2, 0.01f);
        }
        Assert.Equal(p, p2);
        Assert.Equal(q, q2);
        Assert.Equal(6, b.StepCount);
    }

    [Fact]
    public void Malformed_state_and_misuse_give_clear_errors()
    {
        var a = new AdamW(TestCompute.Cpu);
        Assert.Throws<InvalidOperationException>(() => a.Step(0, new float[2], new float[2], 0.1f));
        a.BeginStep();
        Assert.Throws<PeftException>(() => a.Step(0, new float[2], new float[3], 0.1f));
        a.Step(0, new float[2], new float[2], 0.1f);
        var e = Assert.Throws<PeftException>(() => a.Step(0, new float[4], new float[4], 0.1f));
        Assert.Contains("parameter 0", e.Message);
        var st = a.SaveState();
        st["0.exp_avg_sq"].Dispose();
        st.Remove("0.exp_avg_sq");
        var e2 = Assert.Throws<PeftException>(() => new AdamW(TestCompute.Cpu).LoadState(st, "opt.safetensors"));
        Assert.Contains("opt.safetensors", e2.Message);
        Assert.Contains("0.exp_avg_sq", e2.Message);
        st["bogus"] = new Tensor(DType.F32, 1);
        Assert.Throws<PeftException>(() => new AdamW(TestCompute.Cpu).LoadState(st, "opt.safetensors"));
        foreach (var t in st.Values) t.Dispose();
    }
}
