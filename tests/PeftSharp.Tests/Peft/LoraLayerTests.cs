using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Peft;

/// <summary>One adapter layer against a naive reference that materializes W + s·B·A in double (PEFT's formulas).</summary>
public unsafe class LoraLayerTests
{
    /// <summary>The pass the layer calls of this class run in (routing every row to the adapter under test).</summary>
    static readonly PassContext Pass = new(TestCompute.Cpu, AdapterRouting.All("default")) { Training = true, DropoutSeed = 5, DropoutStep = 2 };

    const int In = 24, Out = 20, R = 4, N = 7;

    static (Linear baseLayer, LoraLinear lora, LoraAdapter ad) Make(bool dora, DType dtype, float dropout, bool bias, int seed)
    {
        var rng = new Random(seed);
        var w = new Tensor(dtype, Out, In);
        DTypeConvert.FromFloat(Numerics.RandomFloats(rng, Out * In, 0.3f), dtype, w.Data);
        Tensor? b = null;
        if (bias) { b = new Tensor(DType.F32, Out); Numerics.RandomFloats(rng, Out, 0.5f).CopyTo(b.Floats); }
        var lin = new Linear("model.layers.0.mlp.up_proj", w, b);
        var lora = new LoraLinear(lin, 3);
        var ad = new LoraAdapter(lin.Name, In, Out, R, 8f, rsLora: false, dropout, dora);
        Numerics.RandomFloats(rng, R * In, 0.4f).CopyTo(ad.A.Value.Floats);
        Numerics.RandomFloats(rng, Out * R, 0.4f).CopyTo(ad.B.Value.Floats);   // B ≠ 0 so the branch matters
        lora.Add("default", ad);
        if (dora)
        {
            lora.InitializeVariant(TestCompute.Cpu, "default");
            var m = ad.Magnitude!.Value.Floats;
            for (int i = 0; i < m.Length; i++) m[i] *= 1f + 0.3f * (float)(rng.NextDouble() - 0.5);   // m ≠ ‖W+ΔW‖
        }
        return (lin, lora, ad);
    }

    /// <summary>PEFT forward in double with W' = W + s·B·A materialized (no dropout).</summary>
    static double[] Reference(Linear lin, LoraAdapter ad, float[] x)
    {
        var w = new float[Out * In];
        lin.ReadRows(TestCompute.Cpu, 0, Out, w);
        var a = ad.A.Value.Floats.ToArray();
        var b = ad.B.Value.Floats.ToArray();
        var merged = new double[Out * In];
        for (int o = 0; o < Out; o++)
            for (int i = 0; i < In; i++)
            {
                double d = 0;
                for (int j = 0; j < R; j++) d += (double)b[o * R + j] * a[j * In + i];
                merged[o * In + i] = w[o * In + i] + ad.Scaling * d;
            }
        var f = new double[Out];
        for (int o = 0; o < Out; o++)
        {
            if (!ad.UseDora) { f[o] = 1; continue; }
            double ss = 0;
            for (int i = 0; i < In; i++) ss += merged[o * In + i] * merged[o * In + i];
            f[o] = ad.Magnitude!.Value.Floats[o] / Math.Sqrt(ss);
        }
        var bias = lin.BiasOrEmpty.ToArray();
        var y = new double[N * Out];
        for (int t = 0; t < N; t++)
            for (int o = 0; o < Out; o++)
            {
                double s = 0;
                for (int i = 0; i < In; i++) s += merged[o * In + i] * x[t * In + i];
                y[t * Out + o] = f[o] * s + (bias.Length > 0 ? bias[o] : 0);
            }
        return y;
    }

    [Theory]
    [InlineData(false, DType.F32, false)]
    [InlineData(false, DType.BF16, true)]
    [InlineData(true, DType.F32, true)]
    [InlineData(true, DType.F16, false)]
    public void Forward_MatchesMaterializedReference(bool dora, DType dtype, bool bias)
    {
        var (lin, lora, ad) = Make(dora, dtype, 0f, bias, 1);
        var x = Numerics.RandomFloats(new Random(2), N * In);
        var y = new float[N * Out];
        fixed (float* xp = x, yp = y) lora.Forward(Pass, xp, yp, N);
        Numerics.AssertClose(y, Reference(lin, ad, x), 1e-5, dora ? "DoRA" : "LoRA");
    }

    /// <summary>Σ y·R for a fixed R, the scalar whose gradient the backward must produce.</summary>
    static double Objective(LoraLinear lora, float[] x, float[] rw)
    {
        var y = new float[N * Out];
        fixed (float* xp = x, yp = y) lora.Forward(Pass, xp, yp, N);
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += (double)y[i] * rw[i];
        return s;
    }

    [Theory]
    [InlineData(false, 0f)]
    [InlineData(false, 0.3f)]
    [InlineData(true, 0f)]
    [InlineData(true, 0.3f)]
    public void Backward_MatchesFiniteDifferences(bool dora, float dropout)
    {
        var (lin, lora, ad) = Make(dora, DType.F32, dropout, bias: true, 3);
        var rng = new Random(4);
        var x = Numerics.RandomFloats(rng, N * In);
        var rw = Numerics.RandomFloats(rng, N * Out);
        var dx = new float[N * In];
        Objective(lora, x, rw);
        fixed (float* xp = x, rp = rw, dxp = dx) lora.Backward(Pass, rp, xp, dxp, N);

        // Finite differences in float32 with a double objective: check every parameter entry and input entry.
        const float eps = 2e-3f;
        void Check(Span<float> values, ReadOnlySpan<float> grads, string what)
        {
            var numeric = new double[values.Length];
            var analytic = new float[values.Length];
            for (int i = 0; i < values.Length; i++)
            {
                float v = values[i];
                values[i] = v + eps; double p = Objective(lora, x, rw);
                values[i] = v - eps; double m = Objective(lora, x, rw);
                values[i] = v;
                numeric[i] = (p - m) / (2 * eps);
                analytic[i] = grads[i];
            }
            Numerics.AssertClose(analytic, numeric, 2e-3, what);
        }
        // The norm depends on A and B only, and PEFT detaches it, so plain finite differences are valid for m and x
        // (DoRA) and for A, B and x (LoRA); DoRA's A/B gradients are checked with the norm frozen in the next test.
        if (dora) Check(ad.Magnitude!.Value.Floats, ad.Magnitude.Grad.Floats, "dm");
        else
        {
            Check(ad.A.Value.Floats, ad.A.Grad.Floats, "dA");
            Check(ad.B.Value.Floats, ad.B.Grad.Floats, "dB");
        }
        Check(x, dx, "dx");
    }

    [Fact]
    public void DoraGradients_TreatTheNormAsConstant()
    {
        // With the norm held fixed, y = b + f ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) is linear in B: compare dB with the difference
        // quotient of that frozen-norm function, computed by the materialized reference with f fixed.
        var (lin, lora, ad) = Make(true, DType.F32, 0f, bias: false, 6);
        var rng = new Random(7);
        var x = Numerics.RandomFloats(rng, N * In);
        var rw = Numerics.RandomFloats(rng, N * Out);
        Objective(lora, x, rw);
        var dx = new float[N * In];
        fixed (float* xp = x, rp = rw, dxp = dx) lora.Backward(Pass, rp, xp, dxp, N);
        var f = new double[Out];
        var refY = Reference(lin, ad, x);
        // f_o from the reference: y = f ⊙ (W'x) with W' = W + sBA
        var wfull = new float[Out * In];
        lin.ReadRows(TestCompute.Cpu, 0, Out, wfull);
        double[] WPrimeX(int t, int o)
        {
            var a = ad.A.Value.Floats; var b = ad.B.Value.Floats;
            double s = 0;
            for (int i = 0; i < In; i++)
            {
                double d = 0;
                for (int j = 0; j < R; j++) d += (double)b[o * R + j] * a[j * In + i];
                s += (wfull[o * In + i] + ad.Scaling * d) * x[t * In + i];
            }
            return [s];
        }
        for (int o = 0; o < Out; o++) f[o] = refY[o] / WPrimeX(0, o)[0];
        // dL/dB[o,j] with f fixed = f_o · s · Σ_t R[t,o] · (x_t·A_j)
        var expected = new double[Out * R];
        var av = ad.A.Value.Floats;
        for (int o = 0; o < Out; o++)
            for (int j = 0; j < R; j++)
            {
                double acc = 0;
                for (int t = 0; t < N; t++)
                {
                    double xa = 0;
                    for (int i = 0; i < In; i++) xa += (double)x[t * In + i] * av[j * In + i];
                    acc += rw[t * Out + o] * xa;
                }
                expected[o * R + j] = f[o] * ad.Scaling * acc;
            }
        Numerics.AssertClose(ad.B.Grad.Floats, expected, 1e-4, "DoRA dB with detached norm");
        // dL/dA[j,i] with f fixed = s · Σ_t Σ_o f_o · R[t,o] · B[o,j] · x[t,i]
        var expectedA = new double[R * In];
        var bv = ad.B.Value.Floats;
        for (int j = 0; j < R; j++)
            for (int i = 0; i < In; i++)
            {
                double acc = 0;
                for (int t = 0; t < N; t++)
                    for (int o = 0; o < Out; o++) acc += f[o] * rw[t * Out + o] * bv[o * R + j] * x[t * In + i];
                expectedA[j * In + i] = ad.Scaling * acc;
            }
        Numerics.AssertClose(ad.A.Grad.Floats, expectedA, 1e-4, "DoRA dA with detached norm");
    }

    [Theory]
    [InlineData(false, DType.F32)]
    [InlineData(true, DType.F32)]
    [InlineData(false, DType.BF16)]
    public void MergeThenUnmerge_KeepsOutputsAndRestoresWeights(bool dora, DType dtype)
    {
        var (lin, lora, ad) = Make(dora, dtype, 0f, bias: true, 8);
        var x = Numerics.RandomFloats(new Random(9), N * In);
        var before = new float[N * Out];
        var merged = new float[N * Out];
        var w0 = new float[Out * In];
        lin.ReadRows(TestCompute.Cpu, 0, Out, w0);
        fixed (float* xp = x, yp = before) lora.Forward(Pass, xp, yp, N);
        lora.Merge(TestCompute.Cpu, "default");
        Assert.True(lora.IsMerged("default"));
        fixed (float* xp = x, yp = merged) lora.Forward(Pass, xp, yp, N);   // adapter path skipped: it is in W
        double tol = dtype == DType.BF16 ? 2e-2 : 1e-5;
        Numerics.AssertClose(merged, before.Select(v => (double)v).ToArray(), tol, "merged vs unmerged");
        lora.Unmerge(TestCompute.Cpu, "default");
        var w1 = new float[Out * In];
        lin.ReadRows(TestCompute.Cpu, 0, Out, w1);
        Numerics.AssertClose(w1, w0.Select(v => (double)v).ToArray(), dtype == DType.BF16 ? 1e-2 : 1e-5, "weights after unmerge");
    }
}
