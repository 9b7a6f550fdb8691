using PeftSharp.Tests.TestSupport;
using PeftSharp.Peft;

namespace PeftSharp.Tests.Peft;

/// <summary>
/// The float64 SVD behind PiSSA, on matrices built with known singular values: W = Q1·diag(σ)·Q2ᵀ with random
/// orthonormal Q1, Q2, so the expected σ, the reconstruction and the best rank-k error are known exactly.
/// </summary>
public class TruncatedSvdTests
{
    /// <summary>(n, m) with orthonormal columns (m ≤ n): Gram-Schmidt of a random matrix, column-major in a row-major array.</summary>
    internal static double[] OrthonormalColumns(Random rng, int n, int m)
    {
        var q = new double[n * m];
        for (int j = 0; j < m; j++)
        {
            var v = new double[n];
            for (int i = 0; i < n; i++) v[i] = rng.NextDouble() * 2 - 1;
            for (int pass = 0; pass < 2; pass++)
                for (int p = 0; p < j; p++)
                {
                    double dot = 0;
                    for (int i = 0; i < n; i++) dot += v[i] * q[i * m + p];
                    for (int i = 0; i < n; i++) v[i] -= dot * q[i * m + p];
                }
            double norm = Math.Sqrt(v.Sum(x => x * x));
            for (int i = 0; i < n; i++) q[i * m + j] = v[i] / norm;
        }
        return q;
    }

    /// <summary>W (rows, cols) = Q1·diag(σ)·Q2ᵀ with len(σ) = min(rows, cols).</summary>
    internal static double[] WithSingularValues(Random rng, int rows, int cols, double[] sigma)
    {
        int k = sigma.Length;
        var q1 = OrthonormalColumns(rng, rows, k);
        var q2 = OrthonormalColumns(rng, cols, k);
        var w = new double[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
            {
                double s = 0;
                for (int l = 0; l < k; l++) s += q1[i * k + l] * sigma[l] * q2[j * k + l];
                w[i * cols + j] = s;
            }
        return w;
    }

    internal static double[] Reconstruct(SvdResult r)
    {
        var w = new double[r.Rows * r.Cols];
        for (int i = 0; i < r.Rows; i++)
            for (int j = 0; j < r.Cols; j++)
            {
                double s = 0;
                for (int l = 0; l < r.K; l++) s += r.U[i * r.K + l] * r.S[l] * r.Vt[l * r.Cols + j];
                w[i * r.Cols + j] = s;
            }
        return w;
    }

    internal static double FrobeniusDiff(double[] a, double[] b) => Math.Sqrt(a.Zip(b, (x, y) => (x - y) * (x - y)).Sum());

    /// <summary>max |UᵀU − I| over the k columns of U (rows, k).</summary>
    internal static double OrthoError(double[] u, int rows, int k, bool columns)
    {
        double worst = 0;
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++)
            {
                double s = 0;
                for (int i = 0; i < rows; i++)
                    s += columns ? u[i * k + a] * u[i * k + b] : u[a * rows + i] * u[b * rows + i];
                worst = Math.Max(worst, Math.Abs(s - (a == b ? 1 : 0)));
            }
        return worst;
    }

    [Theory]
    [InlineData(9, 14)]    // wide: Gram W·Wᵀ
    [InlineData(17, 6)]    // tall: Gram Wᵀ·W
    [InlineData(8, 8)]
    public void Exact_FullRank_RecoversKnownSingularValuesAndReconstructs(int rows, int cols)
    {
        var rng = new Random(rows * 100 + cols);
        int k = Math.Min(rows, cols);
        var sigma = Enumerable.Range(0, k).Select(i => 10.0 / (1 + i) + 0.01 * i).OrderByDescending(x => x).ToArray();
        var w = WithSingularValues(rng, rows, cols, sigma);
        var r = TruncatedSvd.Exact(TestCompute.Cpu, w, rows, cols, k);
        for (int i = 0; i < k; i++) Assert.True(Math.Abs(r.S[i] - sigma[i]) < 1e-12 * sigma[0], $"σ{i}: {r.S[i]} vs {sigma[i]}");
        for (int i = 1; i < k; i++) Assert.True(r.S[i] <= r.S[i - 1]);
        Assert.True(OrthoError(r.U, rows, k, columns: true) < 1e-12);
        Assert.True(OrthoError(r.Vt, cols, k, columns: false) < 1e-12);
        double wNorm = Math.Sqrt(w.Sum(x => x * x));
        Assert.True(FrobeniusDiff(Reconstruct(r), w) < 1e-12 * wNorm);
    }

    [Fact]
    public void Exact_Truncated_AttainsTheEckartYoungError()
    {
        var rng = new Random(4);
        double[] sigma = [9, 7, 6.5, 3, 2, 1, 0.5, 0.25];
        var w = WithSingularValues(rng, 12, 8, sigma);
        var r = TruncatedSvd.Exact(TestCompute.Cpu, w, 12, 8, 3);
        Assert.Equal([9, 7, 6.5], r.S.Select(x => Math.Round(x, 10)));
        // The best rank-3 approximation leaves exactly √(Σ_{i>3} σᵢ²).
        double expected = Math.Sqrt(sigma.Skip(3).Sum(s => s * s));
        Assert.True(Math.Abs(FrobeniusDiff(Reconstruct(r), w) - expected) < 1e-10);
    }

    [Fact]
    public void Exact_RankDeficient_StillReturnsOrthonormalFactors()
    {
        var rng = new Random(5);
        double[] sigma = [4, 2, 0, 0, 0];    // rank 2
        var w = WithSingularValues(rng, 5, 10, sigma);
        var r = TruncatedSvd.Exact(TestCompute.Cpu, w, 5, 10, 4);
        Assert.True(Math.Abs(r.S[0] - 4) < 1e-12 && Math.Abs(r.S[1] - 2) < 1e-12);
        Assert.True(r.S[2] < 1e-6 && r.S[3] < 1e-6, $"σ = {string.Join(", ", r.S)}");
        Assert.True(OrthoError(r.U, 5, 4, columns: true) < 1e-9);
        Assert.True(OrthoError(r.Vt, 10, 4, columns: false) < 1e-9, $"V: {OrthoError(r.Vt, 10, 4, columns: false)} U: {OrthoError(r.U, 5, 4, columns: true)} σ = {string.Join(", ", r.S)}");
        // Through the Gram matrix a zero σ comes back as √(ε·σ₁²) ≈ 1e-8: absolute, harmless for PiSSA's leading triplets.
        Assert.True(FrobeniusDiff(Reconstruct(r), w) < 1e-6);
    }

    [Fact]
    public void SymmetricEigen_SatisfiesAvEqualsLambdaV_WithRepeatedAndNegativeEigenvalues()
    {
        var rng = new Random(6);
        int n = 7;
        double[] lambda = [5, 3, 3, 1, 0, -2, -2];
        var q = OrthonormalColumns(rng, n, n);
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int l = 0; l < n; l++) a[i * n + j] += q[i * n + l] * lambda[l] * q[j * n + l];
        var (values, vectors) = SymmetricEigen.Decompose(a, n);
        for (int j = 0; j < n; j++)
        {
            Assert.True(Math.Abs(values[j] - lambda[j]) < 1e-12, $"λ{j} = {values[j]}, expected {lambda[j]}");
            for (int i = 0; i < n; i++)
            {
                double av = 0;
                for (int l = 0; l < n; l++) av += a[i * n + l] * vectors[j * n + l];
                Assert.True(Math.Abs(av - values[j] * vectors[j * n + i]) < 1e-12);
            }
        }
        Assert.True(OrthoError(vectors, n, n, columns: false) < 1e-12);
    }

    [Fact]
    public void Randomized_MatchesExactOnADecayingSpectrum_AndIsDeterministic()
    {
        var rng = new Random(7);
        var sigma = Enumerable.Range(0, 20).Select(i => Math.Pow(0.5, i)).ToArray();
        var w = WithSingularValues(rng, 30, 20, sigma);
        var exact = TruncatedSvd.Exact(TestCompute.Cpu, w, 30, 20, 4);
        var r1 = TruncatedSvd.Randomized(TestCompute.Cpu, w, 30, 20, 4, niter: 4, seed: 11);
        var r2 = TruncatedSvd.Randomized(TestCompute.Cpu, w, 30, 20, 4, niter: 4, seed: 11);
        Assert.Equal(r1.S, r2.S);
        Assert.Equal(r1.U, r2.U);
        for (int i = 0; i < 4; i++) Assert.True(Math.Abs(r1.S[i] - exact.S[i]) < 1e-3 * exact.S[0], $"σ{i}: {r1.S[i]} vs {exact.S[i]}");
        Assert.True(OrthoError(r1.U, 30, 4, columns: true) < 1e-10);
        Assert.True(OrthoError(r1.Vt, 20, 4, columns: false) < 1e-10);
        // More power iterations can only bring the leading σ closer (to float64 precision here).
        var r8 = TruncatedSvd.Randomized(TestCompute.Cpu, w, 30, 20, 4, niter: 12, seed: 11);
        Assert.True(Math.Abs(r8.S[3] - exact.S[3]) < 1e-9);
    }

    [Fact]
    public void Randomized_OnAnExactlyLowRankMatrix_IsExact_EvenWithoutPowerIterations()
    {
        var rng = new Random(8);
        double[] sigma = [3, 2, 1, 0, 0, 0];
        var w = WithSingularValues(rng, 6, 9, sigma);
        var r = TruncatedSvd.Randomized(TestCompute.Cpu, w, 6, 9, 3, niter: 0, seed: 1);
        for (int i = 0; i < 3; i++) Assert.True(Math.Abs(r.S[i] - sigma[i]) < 1e-10);
        Assert.True(FrobeniusDiff(Reconstruct(r), w) < 1e-10);
    }

    [Fact]
    public void RankAboveMinDimension_IsRejected()
    {
        var w = new double[3 * 5];
        Assert.Throws<ArgumentOutOfRangeException>(() => TruncatedSvd.Exact(TestCompute.Cpu, w, 3, 5, 4));
    }
}
