using PeftSharp.Compute;
using PeftSharp.Peft;
using PeftSharp.Quantization;
using PeftSharp.Tests.TestSupport;
using static PeftSharp.Tests.Peft.TruncatedSvdTests;

namespace PeftSharp.Tests.Peft;

/// <summary>
/// The block Krylov top-k SVD against <see cref="TruncatedSvd.Exact"/> (the full Gram eigen-decomposition) and against
/// matrices with known singular values: structured spectra, the flat, noise-like spectrum of a LoftQ residual, rank
/// deficiency, k = min(rows, cols), and the stated tolerance (every θ = σ² within tolerance·σ₁² of the exact one).
/// </summary>
public class KrylovSvdTests
{
    const double Tol = TruncatedSvd.KrylovTolerance;

    static double[] Gaussian(int seed, int n)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble())).ToArray();
    }

    /// <summary>A LoftQ first-step residual: W − NF4(W) for Gaussian W, i.e. almost white noise (flat top of the spectrum).</summary>
    static double[] Nf4Residual(int seed, int rows, int cols)
    {
        var w = Gaussian(seed, rows * cols).Select(x => (float)(0.02 * x)).ToArray();
        using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [rows, cols], Quant4Type.NF4, 64);
        var deq = new float[w.Length];
        q.Dequantize(TestCompute.Cpu, deq);
        return w.Select((x, i) => (double)x - deq[i]).ToArray();
    }

    /// <summary>Σ sin² of the principal angles between the column spaces of a (rows, k) and b (rows, k): k − ‖aᵀb‖²_F.</summary>
    static double SubspaceDistance(double[] a, double[] b, int rows, int k, int first)
    {
        double f = 0;
        for (int i = 0; i < first; i++)
            for (int j = 0; j < first; j++)
            {
                double s = 0;
                for (int r = 0; r < rows; r++) s += a[r * k + i] * b[r * k + j];
                f += s * s;
            }
        return first - f;
    }

    /// <summary>The stated guarantee: σᵢ² within tolerance·σ₁² of Exact's (plus Exact's own rounding), never above it.</summary>
    static void AssertWithinTolerance(SvdResult exact, SvdResult got, double slack = 1e-12)
    {
        double top = exact.S[0] * exact.S[0];
        for (int i = 0; i < got.K; i++)
        {
            double e2 = exact.S[i] * exact.S[i], g2 = got.S[i] * got.S[i];
            Assert.True(Math.Abs(e2 - g2) <= (2 * Tol + slack) * top, $"σ{i}²: Krylov {g2:R}, exact {e2:R}");
            Assert.True(g2 <= e2 + slack * top, $"σ{i}² = {g2:R} above the exact {e2:R} (Ritz values are lower bounds)");
        }
        double energyExact = exact.S.Sum(s => s * s), energy = got.S.Sum(s => s * s);
        Assert.True(Math.Abs(energyExact - energy) <= got.K * (Tol + slack) * top, $"Σσ²: Krylov {energy:R}, exact {energyExact:R}");
    }

    [Theory]
    [InlineData(160, 300, 8)]    // wide: A = W·Wᵀ
    [InlineData(350, 140, 5)]    // tall: A = Wᵀ·W
    public void Structured_spectrum_matches_exact_and_the_known_values(int rows, int cols, int k)
    {
        var rng = new Random(rows + cols);
        int n = Math.Min(rows, cols);
        var sigma = Enumerable.Range(0, n).Select(i => 5.0 * Math.Pow(0.7, i) + 0.01 * (n - i) / n).ToArray();
        var w = WithSingularValues(rng, rows, cols, sigma);
        var exact = TruncatedSvd.Exact(TestCompute.Cpu, w, rows, cols, k);
        var (got, stats) = TruncatedSvd.KrylovWithStats(TestCompute.Cpu, w, rows, cols, k);
        Assert.True(stats.Basis < n, $"basis {stats.Basis} of {n}: the tolerance should stop it early");
        Assert.True(stats.MaxRelativeResidual <= Tol);
        for (int i = 0; i < k; i++) Assert.True(Math.Abs(got.S[i] - sigma[i]) < 1e-9 * sigma[0], $"σ{i}: {got.S[i]} vs {sigma[i]}");
        AssertWithinTolerance(exact, got);
        // Gaps of 30 %: the singular vectors are determined, and agree with Exact's (Davis–Kahan: sin θ ≤ ‖r‖/gap).
        Assert.True(SubspaceDistance(exact.U, got.U, rows, k, k) < 1e-12);
        Assert.True(OrthoError(got.U, rows, k, columns: true) < 1e-12);
        Assert.True(OrthoError(got.Vt, cols, k, columns: false) < 1e-12);
        // Same signs convention as Exact, so the factors themselves agree.
        for (int i = 0; i < got.U.Length; i++) Assert.True(Math.Abs(got.U[i] - exact.U[i]) < 1e-6, $"U[{i}]");
        // Eckart–Young: the rank-k reconstruction leaves √(Σ_{i>k} σᵢ²).
        double expected = Math.Sqrt(sigma.Skip(k).Sum(s => s * s));
        Assert.True(Math.Abs(FrobeniusDiff(Reconstruct(got), w) - expected) < 1e-9 * sigma[0]);
    }

    [Theory]
    [InlineData(96, 320, 16, false)]   // Gaussian: Marchenko–Pastur, tiny gaps at the top
    [InlineData(320, 96, 16, false)]
    [InlineData(128, 256, 16, true)]   // the LoftQ case itself: W − NF4(W)
    [InlineData(256, 128, 8, true)]
    public void Noise_like_spectrum_matches_exact_to_the_tolerance(int rows, int cols, int k, bool residual)
    {
        var w = residual ? Nf4Residual(rows * 3 + cols, rows, cols) : Gaussian(rows + 7 * cols, rows * cols);
        var exact = TruncatedSvd.Exact(TestCompute.Cpu, w, rows, cols, k);
        var (got, stats) = TruncatedSvd.KrylovWithStats(TestCompute.Cpu, w, rows, cols, k);
        Assert.True(stats.MaxRelativeResidual <= Tol || stats.Basis == Math.Min(rows, cols));
        AssertWithinTolerance(exact, got);
        // The gaps here are ~1 % of σ: the top few vectors are determined to ‖r‖/gap.
        double gap = Enumerable.Range(0, 3).Min(i => exact.S[i] * exact.S[i] - exact.S[i + 1] * exact.S[i + 1]) / (exact.S[0] * exact.S[0]);
        Assert.True(SubspaceDistance(exact.U, got.U, rows, k, 3) < Math.Pow(4 * Tol / gap, 2) * 3 + 1e-12, $"gap {gap}");
        // The captured energy ‖Uᵀ·W‖²_F of the returned subspace (what LoftQ removes) equals Exact's to the tolerance.
        Assert.True(OrthoError(got.U, rows, k, columns: true) < 1e-12);
        Assert.True(OrthoError(got.Vt, cols, k, columns: false) < 1e-12);
        double Captured(SvdResult r)
        {
            double e = 0;
            for (int j = 0; j < k; j++)
                for (int c = 0; c < cols; c++)
                {
                    double s = 0;
                    for (int i = 0; i < rows; i++) s += r.U[i * k + j] * w[i * cols + c];
                    e += s * s;
                }
            return e;
        }
        double top = exact.S[0] * exact.S[0];
        Assert.True(Math.Abs(Captured(exact) - Captured(got)) <= k * Tol * top + 1e-11 * top);
    }

    [Fact]
    public void The_flat_spectrum_needs_a_large_basis_and_still_stops_before_the_whole_space()
    {
        // 2048-wide LoftQ residuals need ~30 % of the space; a smaller one of the same kind shows the early stop.
        var w = Nf4Residual(21, 512, 1024);
        var (_, stats) = TruncatedSvd.KrylovWithStats(TestCompute.Cpu, w, 512, 1024, 16);
        Assert.True(stats.Basis < 512 && stats.MaxRelativeResidual <= Tol, $"basis {stats.Basis}, residual {stats.MaxRelativeResidual}");
        // A looser tolerance stops earlier: the criterion, not the space's size, ends the run.
        var (_, loose) = TruncatedSvd.KrylovWithStats(TestCompute.Cpu, w, 512, 1024, 16, tolerance: 1e-3);
        Assert.True(loose.Basis < stats.Basis && loose.MaxRelativeResidual <= 1e-3, $"basis {loose.Basis} vs {stats.Basis}");
    }

    [Theory]
    [InlineData(7, 30)]
    [InlineData(30, 7)]
    public void Rank_deficient_input_gives_the_nonzero_values_and_orthonormal_factors(int rows, int cols)
    {
        var rng = new Random(rows * cols);
        double[] sigma = [4, 2, 1, 0, 0, 0, 0];    // rank 3
        var w = WithSingularValues(rng, rows, cols, sigma);
        var (got, stats) = TruncatedSvd.KrylovWithStats(TestCompute.Cpu, w, rows, cols, 5, blockSize: 8);
        for (int i = 0; i < 3; i++) Assert.True(Math.Abs(got.S[i] - sigma[i]) < 1e-12, $"σ{i} = {got.S[i]}");
        Assert.True(got.S[3] < 1e-6 && got.S[4] < 1e-6, $"σ = {string.Join(", ", got.S)}");
        Assert.True(OrthoError(got.U, rows, 5, columns: true) < 1e-12);
        Assert.True(OrthoError(got.Vt, cols, 5, columns: false) < 1e-12);
        Assert.True(FrobeniusDiff(Reconstruct(got), w) < 1e-6);
        Assert.True(stats.Basis <= 7);
    }

    [Fact]
    public void Zero_matrix_gives_zero_values_and_orthonormal_factors()
    {
        var got = TruncatedSvd.Krylov(TestCompute.Cpu, new double[12 * 20], 12, 20, 4);
        Assert.All(got.S, s => Assert.Equal(0, s));
        Assert.True(OrthoError(got.U, 12, 4, columns: true) < 1e-12);
        Assert.True(OrthoError(got.Vt, 20, 4, columns: false) < 1e-12);
    }

    [Theory]
    [InlineData(9, 14)]
    [InlineData(40, 24)]
    [InlineData(33, 33)]
    public void K_equal_to_min_dimension_is_the_full_decomposition(int rows, int cols)
    {
        var rng = new Random(rows * 100 + cols);
        int k = Math.Min(rows, cols);
        var sigma = Enumerable.Range(0, k).Select(i => 10.0 / (1 + i) + 0.01 * i).OrderByDescending(x => x).ToArray();
        var w = WithSingularValues(rng, rows, cols, sigma);
        var (got, stats) = TruncatedSvd.KrylovWithStats(TestCompute.Cpu, w, rows, cols, k);
        Assert.Equal(k, stats.Basis);
        for (int i = 0; i < k; i++) Assert.True(Math.Abs(got.S[i] - sigma[i]) < 1e-12 * sigma[0], $"σ{i}: {got.S[i]} vs {sigma[i]}");
        Assert.True(FrobeniusDiff(Reconstruct(got), w) < 1e-12 * Math.Sqrt(w.Sum(x => x * x)));
        Assert.True(OrthoError(got.U, rows, k, columns: true) < 1e-12);
        Assert.True(OrthoError(got.Vt, cols, k, columns: false) < 1e-12);
    }

    [Fact]
    public void Result_is_deterministic_and_independent_of_the_thread_count()
    {
        var w = Nf4Residual(5, 64, 160);
        var a = TruncatedSvd.Krylov(TestCompute.Cpu, w, 64, 160, 8);
        var b = TruncatedSvd.Krylov(TestCompute.Cpu, w, 64, 160, 8);
        using var one = TestCompute.With(new ComputeOptions { Threads = 1 });
        var c = TruncatedSvd.Krylov(one, w, 64, 160, 8);
        Assert.Equal(a.S, b.S);
        Assert.Equal(a.U, b.U);
        Assert.Equal(a.S, c.S);
        Assert.Equal(a.U, c.U);
        Assert.Equal(a.Vt, c.Vt);
    }

    [Fact]
    public void Bad_arguments_are_rejected()
    {
        var w = new double[3 * 5];
        Assert.Throws<ArgumentOutOfRangeException>(() => TruncatedSvd.Krylov(TestCompute.Cpu, w, 3, 5, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => TruncatedSvd.Krylov(TestCompute.Cpu, w, 3, 5, 2, tolerance: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => TruncatedSvd.Krylov(TestCompute.Cpu, w, 3, 5, 2, tolerance: double.NaN));
    }

    [Theory]
    [InlineData(96, 256, false)]
    [InlineData(256, 96, true)]
    public void LoftQ_with_the_Krylov_svd_reproduces_the_exact_svd_errors(int rows, int cols, bool doubleQuant)
    {
        var w = Gaussian(rows - cols, rows * cols).Select(x => (float)(0.02 * x)).ToArray();
        var format = new QuantizeOptions(Quant4Type.NF4, doubleQuant, 64);
        var exact = LoftQ.Run(TestCompute.Cpu, w, rows, cols, 16, 2f, 5, format, "w", LoftQSvd.Exact);
        var krylov = LoftQ.Run(TestCompute.Cpu, w, rows, cols, 16, 2f, 5, format, "w");
        Assert.Equal(exact.PlainError, krylov.PlainError);
        Assert.All(krylov.Krylov, s => Assert.NotNull(s));
        Assert.All(exact.Krylov, s => Assert.Null(s));
        // Step 1 is the same residual, so its error agrees to the tolerance; later steps see Q's moved by codes that sit
        // on a rounding boundary, so they agree to the 6 digits the reports print.
        Assert.True(Math.Abs(exact.Errors[0] - krylov.Errors[0]) < 1e-9, $"step 1: {exact.Errors[0]} vs {krylov.Errors[0]}");
        for (int s = 1; s < 5; s++) Assert.True(Math.Abs(exact.Errors[s] - krylov.Errors[s]) < 5e-7, $"step {s + 1}: {exact.Errors[s]} vs {krylov.Errors[s]}");
        exact.Q.Dispose();
        krylov.Q.Dispose();
    }

    [Theory]
    [InlineData(13, 37, 8)]
    [InlineData(16, 20, 16)]
    [InlineData(9, 5, 24)]
    [InlineData(1, 3, 8)]
    public void Block_product_matches_the_naive_sum(int r, int c, int b)
    {
        var m = Gaussian(r * c, r * c);
        var x = Gaussian(c * b + 1, c * b);
        var got = new double[r * b];
        BlockProduct64.Multiply(TestCompute.Cpu, m, r, c, x, b, got);
        for (int i = 0; i < r; i++)
            for (int j = 0; j < b; j++)
            {
                double s = 0;
                for (int l = 0; l < c; l++) s += m[i * c + l] * x[l * b + j];
                Assert.True(Math.Abs(s - got[i * b + j]) < 1e-12 * (1 + Math.Abs(s)), $"[{i},{j}]: {got[i * b + j]} vs {s}");
            }
        Assert.Throws<ArgumentException>(() => BlockProduct64.Multiply(TestCompute.Cpu, m, r, c, x, 7, got));
    }
}
