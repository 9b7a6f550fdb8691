using PeftSharp.Compute;
using PeftSharp.Kernels;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace PeftSharp.Peft;

/// <summary>Top-k singular triplets of W (rows, cols): W ≈ U·diag(S)·Vt.</summary>
/// <param name="U">(rows, k) row-major, orthonormal columns.</param>
/// <param name="S">(k) descending, ≥ 0.</param>
/// <param name="Vt">(k, cols) row-major, orthonormal rows.</param>
/// <param name="Rows">Rows of W.</param>
/// <param name="Cols">Columns of W.</param>
/// <param name="K">Number of triplets kept.</param>
internal sealed record SvdResult(double[] U, double[] S, double[] Vt, int Rows, int Cols, int K);

/// <summary>
/// Truncated SVD in float64 for PiSSA initialization.
/// <see cref="Exact"/>: the eigen-decomposition of the smaller Gram matrix (W·Wᵀ or Wᵀ·W), the other side recovered
/// as W·v/σ (accurate for the leading triplets PiSSA keeps). <see cref="Randomized"/>: torch.svd_lowrank's algorithm
/// (Halko et al. 2009, q = k, no oversampling, niter subspace iterations with re-orthonormalization), seeded.
/// </summary>
internal static partial class TruncatedSvd
{
    public static SvdResult Exact(ComputeContext ctx, ReadOnlySpan<double> w, int rows, int cols, int k)
    {
        Check(w, rows, cols, k);
        bool wide = rows <= cols;
        // x (n, len): the rows of the Gram side; W·Wᵀ uses W's rows, Wᵀ·W uses Wᵀ's rows.
        int n = wide ? rows : cols, len = wide ? cols : rows;
        var x = wide ? w.ToArray() : Transpose(w, rows, cols);
        var gram = Gram(ctx, x, n, len);
        var (values, vectors) = SymmetricEigen.Decompose(gram, n);
        var s = new double[k];
        var small = new double[k * n];     // leading eigenvectors (k, n): left vectors if wide, right otherwise
        for (int j = 0; j < k; j++)
        {
            s[j] = Math.Sqrt(Math.Max(values[j], 0));
            Array.Copy(vectors, j * n, small, j * n, n);
        }
        // Other side: (k, len) rows = xᵀ·vec_j / σ_j.
        var other = new double[k * len];
        for (int j = 0; j < k; j++)
        {
            var o = other.AsSpan(j * len, len);
            for (int i = 0; i < n; i++)
            {
                double c = small[j * n + i];
                if (c != 0) TensorPrimitives.MultiplyAdd(x.AsSpan(i * len, len), c, o, o);
            }
        }
        OrthonormalizeRows(other, k, len, s);
        CanonicalSigns(small, other, k, n, len);
        return wide
            ? new SvdResult(Transpose(small, k, n), s, other, rows, cols, k)
            : new SvdResult(Transpose(other, k, len), s, small, rows, cols, k);
    }

    /// <summary>
    /// Randomized top-k SVD (torch.svd_lowrank(W, q=k, niter)): Q = orth(W·Ω), niter times Q = orth(W·orth(Wᵀ·Q)),
    /// then the exact SVD of the small Qᵀ·W. Ω is standard normal from <paramref name="seed"/>.
    /// </summary>
    public static SvdResult Randomized(ComputeContext ctx, ReadOnlySpan<double> w, int rows, int cols, int k, int niter, ulong seed)
    {
        Check(w, rows, cols, k);
        if (niter < 0) throw new ArgumentOutOfRangeException(nameof(niter));
        var wa = w.ToArray();
        var wt = Transpose(w, rows, cols);                 // (cols, rows)
        var rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
        var omega = new double[k * cols];                  // Ωᵀ (k, cols)
        for (int i = 0; i < omega.Length; i++) omega[i] = Gaussian(rng);
        // Column bases are kept transposed: qt (k, rows) row j = basis vector j.
        var qt = MultiplyRowsBy(ctx, wa, rows, cols, omega, k);  // (W·Ω)ᵀ
        OrthonormalizeRows(qt, k, rows, null);
        for (int it = 0; it < niter; it++)
        {
            var pt = MultiplyRowsBy(ctx, wt, cols, rows, qt, k); // (Wᵀ·Q)ᵀ (k, cols)
            OrthonormalizeRows(pt, k, cols, null);
            qt = MultiplyRowsBy(ctx, wa, rows, cols, pt, k);     // (W·P)ᵀ (k, rows)
            OrthonormalizeRows(qt, k, rows, null);
        }
        // Bsmall (k, cols) = Qᵀ·W: row j = Σ_i q_j[i]·W_i
        var b = new double[k * cols];
        for (int j = 0; j < k; j++)
        {
            var o = b.AsSpan(j * cols, cols);
            for (int i = 0; i < rows; i++)
            {
                double c = qt[j * rows + i];
                if (c != 0) TensorPrimitives.MultiplyAdd(wa.AsSpan(i * cols, cols), c, o, o);
            }
        }
        var inner = Exact(ctx, b, k, cols, k);
        // U (rows, k) = Q · U_b:  U[i, j] = Σ_l qt[l, i]·Ub[l, j]
        var u = new double[rows * k];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < k; j++)
            {
                double acc = 0;
                for (int l = 0; l < k; l++) acc += qt[l * rows + i] * inner.U[l * k + j];
                u[i * k + j] = acc;
            }
        return new SvdResult(u, inner.S, inner.Vt, rows, cols, k);
    }

    static void Check(ReadOnlySpan<double> w, int rows, int cols, int k)
    {
        if (w.Length != (long)rows * cols) throw new ArgumentException($"expected {rows}×{cols} values, got {w.Length}");
        if (k < 1 || k > Math.Min(rows, cols)) throw new ArgumentOutOfRangeException(nameof(k), $"k = {k} must be in [1, min({rows}, {cols})]");
    }

    /// <summary>g (n,n) = x·xᵀ for x (n, len), float64, parallel over rows of g.</summary>
    static double[] Gram(ComputeContext ctx, double[] x, int n, int len)
    {
        var g = new double[n * n];
        ctx.For(n, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                var xi = new ReadOnlySpan<double>(x, i * len, len);
                for (int j = 0; j <= i; j++) g[i * n + j] = TensorPrimitives.Dot(xi, new ReadOnlySpan<double>(x, j * len, len));
            }
        });
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) g[i * n + j] = g[j * n + i];
        return g;
    }

    /// <summary>(M·Xᵀᵀ)ᵀ: for m (r, c) and xt (k, c), returns (k, r) with [j, i] = ⟨m_i, xt_j⟩.</summary>
    static double[] MultiplyRowsBy(ComputeContext ctx, double[] m, int r, int c, double[] xt, int k)
    {
        var o = new double[k * r];
        ctx.For(r, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                var mi = new ReadOnlySpan<double>(m, i * c, c);
                for (int j = 0; j < k; j++) o[j * r + i] = TensorPrimitives.Dot(mi, new ReadOnlySpan<double>(xt, j * c, c));
            }
        });
        return o;
    }

    /// <summary>
    /// Modified Gram-Schmidt, twice, on the rows of a (k, len). A row that vanishes (rank deficiency, σ = 0) is
    /// replaced by the first unit vector orthogonal to the previous rows. When <paramref name="sigma"/> is given the
    /// rows are x·v/σ before normalization, so dividing by σ is implied by normalizing.
    /// </summary>
    static void OrthonormalizeRows(double[] a, int k, int len, double[]? sigma)
    {
        for (int j = 0; j < k; j++)
        {
            var row = a.AsSpan(j * len, len);
            double before = Math.Sqrt(TensorPrimitives.Dot(row, row));
            for (int pass = 0; pass < 2; pass++)
                for (int p = 0; p < j; p++)
                {
                    var prev = a.AsSpan(p * len, len);
                    TensorPrimitives.MultiplyAdd(prev, -TensorPrimitives.Dot(row, prev), row, row);
                }
            double norm = Math.Sqrt(TensorPrimitives.Dot(row, row));
            bool degenerate = norm <= 1e-12 * Math.Max(before, 1e-300) || (sigma != null && sigma[j] == 0) || norm == 0;
            if (degenerate)
            {
                for (int unit = 0; unit < len; unit++)
                {
                    row.Clear();
                    row[unit] = 1;
                    for (int pass = 0; pass < 2; pass++)
                        for (int p = 0; p < j; p++)
                        {
                            var prev = a.AsSpan(p * len, len);
                            TensorPrimitives.MultiplyAdd(prev, -TensorPrimitives.Dot(row, prev), row, row);
                        }
                    norm = Math.Sqrt(TensorPrimitives.Dot(row, row));
                    if (norm > 0.5) break;
                }
            }
            TensorPrimitives.Multiply(row, 1 / norm, row);
        }
    }

    /// <summary>Deterministic signs: the largest-magnitude entry of each right/left pair's first factor is positive.</summary>
    static void CanonicalSigns(double[] small, double[] other, int k, int n, int len)
    {
        for (int j = 0; j < k; j++)
        {
            var s = small.AsSpan(j * n, n);
            int arg = 0;
            for (int i = 1; i < n; i++) if (Math.Abs(s[i]) > Math.Abs(s[arg])) arg = i;
            if (s[arg] < 0)
            {
                TensorPrimitives.Negate(s, s);
                var o = other.AsSpan(j * len, len);
                TensorPrimitives.Negate(o, o);
            }
        }
    }

    static double[] Transpose(ReadOnlySpan<double> m, int r, int c)
    {
        var t = new double[r * c];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++) t[j * r + i] = m[i * c + j];
        return t;
    }

    static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
