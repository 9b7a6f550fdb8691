using PeftSharp.Compute;
using PeftSharp.Tests.TestSupport;
using PeftSharp.Kernels;
using PeftSharp.Optim;
using PeftSharp.Quantization;
using PeftSharp.Tensors;

namespace PeftSharp.Tests.Optim;

[Collection("GlobalKernelSettings")]
public class AdamW8bitTests
{
    [Fact]
    public void Small_tensors_use_float32_states_equal_to_the_bitsandbytes_32bit_kernel()
    {
        var rng = new Random(3);
        var p0 = TestSupport.Numerics.RandomFloats(rng, 4095);
        var a = (float[])p0.Clone();
        var b = (float[])p0.Clone();
        var opt8 = new AdamW8bit(TestCompute.Cpu) { WeightDecay = 0.05f };
        var opt32 = new AdamW(TestCompute.Cpu) { WeightDecay = 0.05f, Flavor = AdamWFlavor.Bitsandbytes };
        for (int t = 0; t < 5; t++)
        {
            var g = TestSupport.Numerics.RandomFloats(rng, 4095);
            opt8.BeginStep(); opt8.Step(0, a, g, 1e-2f);
            opt32.BeginStep(); opt32.Step(0, b, g, 1e-2f);
        }
        Assert.False(opt8.Is8Bit(0));
        Assert.Equal(b, a);
    }

    // loss = ½ Σ a_i (x_i − c_i)² / n with random curvatures a_i and targets c_i; gradient a_i (x_i − c_i) / n
    static double LossAndGrad(float[] curv, float[] target, float[] x, float[] g)
    {
        double loss = 0;
        int n = x.Length;
        for (int i = 0; i < n; i++)
        {
            float d = x[i] - target[i];
            loss += 0.5 * curv[i] * d * d / n;
            g[i] = curv[i] * d / n;
        }
        return loss;
    }

    [Fact]
    public void Large_tensor_trajectory_tracks_32bit_adamw()
    {
        const int n = 16384, steps = 60;
        var rng = new Random(4);
        var curv = new float[n];
        var target = new float[n];
        for (int i = 0; i < n; i++) { curv[i] = 0.1f + 2f * (float)rng.NextDouble(); target[i] = (float)(rng.NextDouble() * 2 - 1); }
        var x8 = new float[n];
        var x32 = new float[n];
        var g = new float[n];
        var opt8 = new AdamW8bit(TestCompute.Cpu) { WeightDecay = 0.01f };
        var opt32 = new AdamW(TestCompute.Cpu) { WeightDecay = 0.01f, Flavor = AdamWFlavor.Bitsandbytes };
        double first = LossAndGrad(curv, target, x32, g);
        double l8 = 0, l32 = 0;
        for (int t = 1; t <= steps; t++)
        {
            l8 = LossAndGrad(curv, target, x8, g);
            opt8.BeginStep(); opt8.Step(0, x8, g, 1e-2f);
            l32 = LossAndGrad(curv, target, x32, g);
            opt32.BeginStep(); opt32.Step(0, x32, g, 1e-2f);
            if (t % 10 == 0)
                Assert.True(Math.Abs(l8 - l32) <= 0.05 * l32, $"step {t}: 8-bit loss {l8} vs 32-bit {l32}");
        }
        Assert.True(opt8.Is8Bit(0));
        Assert.True(l32 < 0.2 * first, $"32-bit did not train: {first} → {l32}");
    }

    [Fact]
    public void Non_finite_gradient_resets_the_element_state_and_skips_its_update()
    {
        var rng = new Random(5);
        int n = 5000;
        var p = TestSupport.Numerics.RandomFloats(rng, n);
        var opt = new AdamW8bit(TestCompute.Cpu) { WeightDecay = 0.1f };
        for (int t = 0; t < 2; t++) { opt.BeginStep(); opt.Step(0, p, TestSupport.Numerics.RandomFloats(rng, n), 1e-2f); }
        var before = (float[])p.Clone();
        var g = TestSupport.Numerics.RandomFloats(rng, n);
        g[10] = float.NaN; g[300] = float.PositiveInfinity; g[4999] = float.NegativeInfinity;
        opt.BeginStep(); opt.Step(0, p, g, 1e-2f);
        var (m, v) = opt.DequantizedState(0)!.Value;
        foreach (int i in new[] { 10, 300, 4999 })
        {
            Assert.Equal(before[i], p[i]);
            Assert.Equal(0f, m[i]);
            Assert.Equal(0f, v[i]);
        }
        Assert.NotEqual(before[11], p[11]);
        Assert.True(v[11] > 0);
        Assert.All(p, x => Assert.True(float.IsFinite(x)));
    }

    [Fact]
    public void First_step_matches_a_hand_computed_block()
    {
        // Step 1 from zero states: m = (1−β1)g, v = (1−β2)g², update = −lr·√(1−β2)/(1−β1) · m/(√v + ε√(1−β2)) ≈ −lr·sign(g).
        int n = 4096;
        var g = new float[n];
        for (int i = 0; i < n; i++) g[i] = (i % 3 - 1) * (1 + i % 17) * 0.01f;
        var p = new float[n];
        var opt = new AdamW8bit(TestCompute.Cpu) { WeightDecay = 0f };
        opt.BeginStep();
        opt.Step(0, p, g, 0.01f);
        for (int i = 0; i < n; i++)
        {
            double expected = g[i] == 0 ? 0 : -0.01 * Math.Sign(g[i]);
            Assert.Equal(expected, p[i], 1e-6);
        }
        var (m, v) = opt.DequantizedState(0)!.Value;
        // block absmax of m is the largest |(1−β1)·g| of the block; that element dequantizes exactly (code 1.0)
        // (a value scaled to +1 hits the map's 1.0 exactly; −1 would map to −0.99296875)
        int iMax = 0;
        float best = 0; for (int i = 0; i < 256; i++) if (g[i] > best) { best = g[i]; iMax = i; }
        Assert.Equal((1f - 0.9f) * best, m[iMax]);
        // every m keeps the sign of (1−β1)·g
        for (int i = 0; i < n; i++) Assert.Equal(Math.Sign(g[i]), Math.Sign(m[i]));
        Assert.All(v, x => Assert.True(x >= 0));
    }

    [Fact]
    public void Small_negative_moment_keeps_its_sign_through_the_nudge()
    {
        // one huge gradient makes the block absmax large; tiny negative m values would round to the code of 0.0
        int n = 4096;
        var g = new float[n];
        g[0] = 1000f;
        g[1] = -1e-6f;
        g[2] = 1e-6f;
        var p = new float[n];
        var opt = new AdamW8bit(TestCompute.Cpu) { WeightDecay = 0f };
        opt.BeginStep();
        opt.Step(0, p, g, 1e-3f);
        var (m, _) = opt.DequantizedState(0)!.Value;
        Assert.True(m[1] < 0, $"m[1] = {m[1]}");
        Assert.Equal(0f, m[2]); // positive tiny value → the code of 0.0 (same sign bit, no nudge)
        Assert.Equal(0f, m[3]);
    }

    [Fact]
    public void Results_do_not_depend_on_the_thread_count()
    {
        var rng = new Random(6);
        int n = 70000;
        var p0 = TestSupport.Numerics.RandomFloats(rng, n);
        var gs = Enumerable.Range(0, 3).Select(_ => TestSupport.Numerics.RandomFloats(rng, n)).ToArray();
        float[] Run(int threads)
        {
            using var ctx = TestCompute.With(new ComputeOptions { Threads = threads });
            var p = (float[])p0.Clone();
            var opt = new AdamW8bit(ctx);
            foreach (var g in gs) { opt.BeginStep(); opt.Step(0, p, g, 1e-3f); }
            return p;
        }
        Assert.Equal(Run(1), Run(2));
    }

    [Fact]
    public void Avx2_and_scalar_paths_agree_on_params_and_states()
    {
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) return;
        var rng = new Random(8);
        int n = 4096 + 37;
        var p0 = TestSupport.Numerics.RandomFloats(rng, n);
        var gs = Enumerable.Range(0, 4).Select(_ => TestSupport.Numerics.RandomFloats(rng, n)).ToArray();
        gs[2][5] = float.NaN;
        gs[1][300] = 1e4f; // a dominant element: many tiny moments, exercising the sign nudge
        (float[] p, float[] m, float[] v) Run(bool avx)
        {
            using var ctx = TestCompute.With(new ComputeOptions { VectorKernels = avx });
            var p = (float[])p0.Clone();
            var opt = new AdamW8bit(ctx);
            foreach (var g in gs) { opt.BeginStep(); opt.Step(0, p, g, 1e-3f); }
            var (m, v) = opt.DequantizedState(0)!.Value;
            return (p, m, v);
        }
        var a = Run(false);
        var b = Run(true);
        Assert.Equal(a.p, b.p);
        Assert.Equal(a.m, b.m);
        Assert.Equal(a.v, b.v);
    }

    [Fact]
    public void State_save_and_load_continue_identically()
    {
        var rng = new Random(7);
        var big = TestSupport.Numerics.RandomFloats(rng, 5000);
        var small = TestSupport.Numerics.RandomFloats(rng, 100);
        var gs = Enumerable.Range(0, 6).Select(_ => (TestSupport.Numerics.RandomFloats(rng, 5000), TestSupport.Numerics.RandomFloats(rng, 100))).ToArray();
        var a = new AdamW8bit(TestCompute.Cpu);
        for (int t = 0; t < 3; t++) { a.BeginStep(); a.Step(0, big, gs[t].Item1, 1e-3f); a.Step(1, small, gs[t].Item2, 1e-3f); }
        var saved = a.SaveState();
        Assert.Equal(DType.U8, saved["0.state1"].DType);
        Assert.Equal(DType.F32, saved["1.state1"].DType);
        var b = new AdamW8bit(TestCompute.Cpu);
        b.LoadState(saved, "checkpoint-3/optimizer.safetensors");
        foreach (var t in saved.Values) t.Dispose();
        var big2 = (float[])big.Clone();
        var small2 = (float[])small.Clone();
        for (int t = 3; t < 6; t++)
        {
            a.BeginStep(); a.Step(0, big, gs[t].Item1, 1e-3f); a.Step(1, small, gs[t].Item2, 1e-3f);
            b.BeginStep(); b.Step(0, big2, gs[t].Item1, 1e-3f); b.Step(1, small2, gs[t].Item2, 1e-3f);
        }
        Assert.Equal(big, big2);
        Assert.Equal(small, small2);
    }

    [Fact]
    public void Malformed_8bit_state_is_refused()
    {
        var a = new AdamW8bit(TestCompute.Cpu);
        a.BeginStep();
        a.Step(0, new float[5000], TestSupport.Numerics.RandomFloats(new Random(1), 5000), 1e-3f);
        var st = a.SaveState();
        st["0.absmax2"].Dispose();
        st["0.absmax2"] = new Tensor(DType.F32, 3);
        var e = Assert.Throws<PeftException>(() => new AdamW8bit(TestCompute.Cpu).LoadState(st, "opt.safetensors"));
        Assert.Contains("parameter 0", e.Message);
        foreach (var t in st.Values) t.Dispose();
    }
}
