using PeftSharp.Peft;
using PeftSharp.Quantization;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Peft;

/// <summary>LoftQ's iteration (PEFT utils/loftq_utils.py loftq_init) against an independent float64 reference.</summary>
public class LoftQTests
{
    static float[] Gaussian(int seed, int n, double std = 0.02)
    {
        var rng = new Random(seed);
        var w = new float[n];
        for (int i = 0; i < n; i++)
            w[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()) * std);
        return w;
    }

    /// <summary>Gaussian noise plus a few outlier columns and a rank-2 component: a weight with some structure.</summary>
    static float[] Structured(int seed, int rows, int cols)
    {
        var w = Gaussian(seed, rows * cols);
        var rng = new Random(seed + 100);
        var u = Enumerable.Range(0, 2 * rows).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var v = Enumerable.Range(0, 2 * cols).Select(_ => rng.NextDouble() - 0.5).ToArray();
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                w[i * cols + j] += (float)(0.03 * (u[i] * v[j] + u[rows + i] * v[cols + j]) + (j % 7 == 0 ? 0.05 * (rng.NextDouble() - 0.5) : 0));
        return w;
    }

    static readonly QuantizeOptions Peft = LoftQ.PeftFormat;

    [Theory]
    [InlineData(24, 40, 4, 1.0f, 3)]    // s = 1: PEFT's own factors (√S on both sides, no scaling)
    [InlineData(40, 24, 3, 2.0f, 3)]    // s = 2 (alpha = 2r), tall
    [InlineData(32, 64, 8, 0.5f, 2)]
    public void Iteration_matches_the_float64_reference(int rows, int cols, int r, float s, int iters)
    {
        var w = Structured(rows * 7 + cols, rows, cols);
        var wd = w.Select(x => (double)x).ToArray();
        var got = LoftQ.Run(TestCompute.Cpu, w, rows, cols, r, s, iters, Peft, "w");
        var (steps, plain) = LoftQReference.Run(wd, rows, cols, r, s, iters);
        Assert.Equal(plain, got.PlainError, 6);
        for (int k = 0; k < iters; k++) Assert.True(Math.Abs(steps[k].Error - got.Errors[k]) < 2e-4, $"step {k + 1}: reference {steps[k].Error}, got {got.Errors[k]}");

        // The final Q: codes equal except where float32 and float64 residuals fall on different sides of a midpoint.
        var q = new float[w.Length];
        got.Q.Dequantize(TestCompute.Cpu, q);
        var last = steps[^1];
        int differ = Enumerable.Range(0, w.Length).Count(i => Math.Abs(q[i] - last.Q[i]) > 1e-6);
        Assert.True(differ <= w.Length / 200, $"{differ} of {w.Length} quantized values differ from the reference");

        // s·B·A: the same product (singular vectors are only defined up to sign, the product is not).
        var sba = LoftQReference.ScaledProduct(got.B.Select(x => (double)x).ToArray(), got.A.Select(x => (double)x).ToArray(), rows, cols, r, s);
        var refSba = LoftQReference.ScaledProduct(last.B, last.A, rows, cols, r, s);
        double diff = Math.Sqrt(sba.Zip(refSba, (x, y) => (x - y) * (x - y)).Sum()), size = Math.Sqrt(refSba.Sum(x => x * x));
        Assert.True(diff <= 2e-3 * size + 1e-7 * differ, $"‖s·B·A − reference‖ = {diff} (‖reference‖ {size}, {differ} codes differ)");
        // The √(S/s) split: ‖A_j‖² = ‖B_:j‖² = σ_j / s, as the reference's.
        for (int j = 0; j < r; j++)
        {
            double aj = Enumerable.Range(0, cols).Sum(c => (double)got.A[j * cols + c] * got.A[j * cols + c]);
            double bj = Enumerable.Range(0, rows).Sum(o => (double)got.B[o * r + j] * got.B[o * r + j]);
            double expected = Enumerable.Range(0, cols).Sum(c => last.A[j * cols + c] * last.A[j * cols + c]);
            Assert.True(Math.Abs(aj - expected) <= 1e-3 * expected && Math.Abs(bj - expected) <= 1e-3 * expected, $"σ_{j}/s: ‖A_j‖² {aj}, ‖B_j‖² {bj}, reference {expected}");
        }
        got.Q.Dispose();
    }

    [Fact]
    public void First_step_removes_exactly_the_top_r_energy_of_the_quantization_error()
    {
        // Eckart–Young: ‖E − E_r‖² = ‖E‖² − Σ_{j≤r} σ_j², with E = W − NF4(W).
        const int rows = 48, cols = 80, r = 6;
        var w = Gaussian(3, rows * cols);
        var got = LoftQ.Run(TestCompute.Cpu, w, rows, cols, r, 2f, 1, Peft, "w");
        using var plainQ = Quantized4Bit.Quantize(TestCompute.Cpu, w, [rows, cols], Quant4Type.NF4, 64);
        var deq = new float[w.Length];
        plainQ.Dequantize(TestCompute.Cpu, deq);
        var e = w.Select((x, i) => (double)x - deq[i]).ToArray();
        var (_, sigma, _) = LoftQReference.JacobiSvd(e, rows, cols);
        double wn2 = w.Sum(x => (double)x * x), e2 = e.Sum(x => x * x);
        Assert.Equal(Math.Sqrt(e2 / wn2), got.PlainError, 9);
        Assert.Equal(Math.Sqrt((e2 - sigma.Take(r).Sum(x => x * x)) / wn2), got.Errors[0], 6);
        Assert.True(got.Errors[0] < got.PlainError);
        // and the first Q is plain NF4 of W
        Assert.Equal(plainQ.PackedSpan.ToArray(), got.Q.PackedSpan.ToArray());
        got.Q.Dispose();
    }

    [Theory]
    [InlineData(1, 64, 128, 8, false)]
    [InlineData(2, 96, 64, 4, false)]
    [InlineData(3, 64, 192, 16, true)]
    [InlineData(4, 128, 64, 8, true)]
    public void Error_does_not_increase_with_iterations(int seed, int rows, int cols, int r, bool structured)
    {
        // The SVD step is an exact minimizer, the quantize step is not (NF4's grid moves with each block's absmax), so
        // LoftQ is not monotone by construction. With PEFT's format (float32 absmax) it does not increase here; with
        // double quantization (8-bit absmax) a late step may rise by a fraction of a percent (seen: +0.13 % at step 5).
        var w = structured ? Structured(seed, rows, cols) : Gaussian(seed, rows * cols);
        foreach (var (format, slack) in new[] { (Peft, 1e-9), (new QuantizeOptions(Quant4Type.NF4, true, 64), 5e-3) })
        {
            var got = LoftQ.Run(TestCompute.Cpu, w, rows, cols, r, 2f, 5, format, "w");
            Assert.True(got.Errors[0] < got.PlainError, $"step 1 {got.Errors[0]} vs NF4 {got.PlainError}");
            for (int k = 1; k < got.Errors.Length; k++)
                Assert.True(got.Errors[k] <= got.Errors[k - 1] * (1 + slack), $"step {k + 1}: {got.Errors[k]} > step {k}: {got.Errors[k - 1]} ({format})");
            Assert.True(got.Errors[^1] < got.Errors[0], $"step 5 {got.Errors[^1]} vs step 1 {got.Errors[0]} ({format})");
            got.Q.Dispose();
        }
    }

    [Fact]
    public void Step_k_of_a_longer_run_is_exactly_the_run_with_loftq_iter_k()
    {
        const int rows = 32, cols = 48, r = 4;
        var w = Structured(9, rows, cols);
        var five = LoftQ.Run(TestCompute.Cpu, w, rows, cols, r, 1f, 4, Peft, "w");
        for (int k = 1; k <= 4; k++)
        {
            var run = LoftQ.Run(TestCompute.Cpu, w, rows, cols, r, 1f, k, Peft, "w");
            Assert.Equal(five.Errors.Take(k), run.Errors);
            if (k == 4)
            {
                Assert.Equal(five.Q.PackedSpan.ToArray(), run.Q.PackedSpan.ToArray());
                Assert.Equal(five.A, run.A);
                Assert.Equal(five.B, run.B);
            }
            run.Q.Dispose();
        }
        five.Q.Dispose();
    }

    [Fact]
    public void The_scaling_only_moves_sqrt_s_between_the_factors_and_the_adapter()
    {
        const int rows = 40, cols = 56, r = 5;
        var w = Structured(11, rows, cols);
        var one = LoftQ.Run(TestCompute.Cpu, w, rows, cols, r, 1f, 3, Peft, "w");
        var four = LoftQ.Run(TestCompute.Cpu, w, rows, cols, r, 4f, 3, Peft, "w");
        for (int k = 0; k < 3; k++) Assert.Equal(one.Errors[k], four.Errors[k], 5);
        for (int i = 0; i < one.A.Length; i++) Assert.Equal(one.A[i] / 2f, four.A[i], 5);   // √(S/4) = √S / 2
        for (int i = 0; i < one.B.Length; i++) Assert.Equal(one.B[i] / 2f, four.B[i], 5);
        one.Q.Dispose();
        four.Q.Dispose();
    }

    [Fact]
    public void Bad_inputs_are_clear_errors()
    {
        var w = Gaussian(1, 16 * 16);
        Assert.Contains("rank 17", Assert.Throws<PeftException>(() => LoftQ.Run(TestCompute.Cpu, w, 16, 16, 17, 1f, 1, Peft, "m.weight")).Message);
        Assert.Contains("loftq_iter", Assert.Throws<PeftException>(() => LoftQ.Run(TestCompute.Cpu, w, 16, 16, 2, 1f, 0, Peft, "m.weight")).Message);
        w[37] = float.NaN;
        var e = Assert.Throws<PeftException>(() => LoftQ.Run(TestCompute.Cpu, w, 16, 16, 2, 1f, 1, Peft, "m.weight"));
        Assert.Contains("m.weight", e.Message);
        Assert.Contains("37", e.Message);
    }
}
