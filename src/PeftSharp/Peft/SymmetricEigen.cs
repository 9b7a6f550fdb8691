using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace PeftSharp.Peft;

/// <summary>
/// Eigen-decomposition of a real symmetric matrix in float64: Householder reduction to tridiagonal form, then the
/// implicit QL iteration with Wilkinson-style shifts (the classic EISPACK tred2/tql2 pair). O(n³), runs once per
/// PiSSA module. Eigenvalues come back in descending order; eigenvector j is row j of the returned matrix.
/// </summary>
internal static class SymmetricEigen
{
    /// <summary>
    /// a (n,n) symmetric, row-major (only read). Returns (values (n) descending, vectors (n,n) row j = eigenvector j,
    /// unit length).
    /// </summary>
    public static (double[] Values, double[] Vectors) Decompose(ReadOnlySpan<double> a, int n)
    {
        if (a.Length != n * n) throw new ArgumentException($"expected {n}×{n} values, got {a.Length}");
        var z = a.ToArray();                  // (n,n) becomes the Householder transform, row k = its column k
        var d = new double[n];
        var e = new double[n];
        Tridiagonalize(z, d, e, n);
        TridiagonalQl(d, e, z, n);            // QL rotations touch two rows of z: contiguous
        // Sort descending (selection sort on an index; n ≤ a few thousand).
        var order = Enumerable.Range(0, n).OrderByDescending(i => d[i]).ThenBy(i => i).ToArray();
        var values = new double[n];
        var vectors = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            values[j] = d[order[j]];
            Array.Copy(z, order[j] * n, vectors, j * n, n);
        }
        return (values, vectors);
    }

    /// <summary>
    /// Householder reduction (tred2). Storage is column-major for the classic formulation: m[j·n + k] holds element
    /// (k, j), so every inner loop runs over contiguous memory (the input is symmetric, so m = a to start). On return
    /// m row k is column k of the orthogonal Q with A = Q·T·Qᵀ, d the diagonal of T and e[1..n) its sub-diagonal.
    /// </summary>
    static void Tridiagonalize(double[] m, double[] d, double[] e, int n)
    {
        for (int j = 0; j < n; j++) d[j] = m[j * n + n - 1];
        for (int i = n - 1; i > 0; i--)
        {
            double scale = 0, h = 0;
            for (int k = 0; k < i; k++) scale += Math.Abs(d[k]);
            if (scale == 0)
            {
                e[i] = d[i - 1];
                for (int j = 0; j < i; j++)
                {
                    d[j] = m[j * n + i - 1];
                    m[j * n + i] = 0;
                    m[i * n + j] = 0;
                }
            }
            else
            {
                // Householder vector u = x − α·e_{i−1} for row i (scaled to avoid under/overflow).
                for (int k = 0; k < i; k++)
                {
                    d[k] /= scale;
                    h += d[k] * d[k];
                }
                double f = d[i - 1];
                double g = Math.Sqrt(h);
                if (f > 0) g = -g;
                e[i] = scale * g;
                h -= f * g;
                d[i - 1] = f - g;
                Array.Clear(e, 0, i);
                // p = A·u (into e), from the lower triangle (column j of it is m row j).
                for (int j = 0; j < i; j++)
                {
                    f = d[j];
                    m[i * n + j] = f;
                    g = e[j] + m[j * n + j] * f;
                    int len = i - 1 - j;
                    if (len > 0)
                    {
                        var col = new ReadOnlySpan<double>(m, j * n + j + 1, len);
                        g += TensorPrimitives.Dot(col, new ReadOnlySpan<double>(d, j + 1, len));
                        var ek = e.AsSpan(j + 1, len);
                        TensorPrimitives.MultiplyAdd(col, f, ek, ek);
                    }
                    e[j] = g;
                }
                f = 0;
                for (int j = 0; j < i; j++)
                {
                    e[j] /= h;
                    f += e[j] * d[j];
                }
                double hh = f / (h + h);
                for (int j = 0; j < i; j++) e[j] -= hh * d[j];
                // A ← A − u·qᵀ − q·uᵀ (lower triangle).
                for (int j = 0; j < i; j++)
                {
                    var col = m.AsSpan(j * n + j, i - j);
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<double>(e, j, i - j), -d[j], col, col);
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<double>(d, j, i - j), -e[j], col, col);
                    d[j] = m[j * n + i - 1];
                    m[j * n + i] = 0;
                }
            }
            d[i] = h;
        }
        // Accumulate the transformations.
        for (int i = 0; i < n - 1; i++)
        {
            m[i * n + n - 1] = m[i * n + i];
            m[i * n + i] = 1;
            double h = d[i + 1];
            if (h != 0)
            {
                var u = new ReadOnlySpan<double>(m, (i + 1) * n, i + 1);
                for (int k = 0; k <= i; k++) d[k] = u[k] / h;
                var dk = new ReadOnlySpan<double>(d, 0, i + 1);
                for (int j = 0; j <= i; j++)
                {
                    var col = m.AsSpan(j * n, i + 1);
                    double g = TensorPrimitives.Dot(u, col);
                    TensorPrimitives.MultiplyAdd(dk, -g, col, col);
                }
            }
            Array.Clear(m, (i + 1) * n, i + 1);
        }
        for (int j = 0; j < n; j++)
        {
            d[j] = m[j * n + n - 1];
            m[j * n + n - 1] = 0;
        }
        m[(n - 1) * n + n - 1] = 1;
        e[0] = 0;
    }

    /// <summary>
    /// Implicit QL on the tridiagonal (d, e); z rows are the basis vectors, rotated along. On return d holds the
    /// eigenvalues and z row j the eigenvector of d[j].
    /// </summary>
    static void TridiagonalQl(double[] d, double[] e, double[] z, int n)
    {
        for (int i = 1; i < n; i++) e[i - 1] = e[i];
        e[n - 1] = 0;
        double f = 0, tst1 = 0;
        const double eps = 2.220446049250313e-16;
        for (int l = 0; l < n; l++)
        {
            tst1 = Math.Max(tst1, Math.Abs(d[l]) + Math.Abs(e[l]));
            int m = l;
            while (m < n - 1 && Math.Abs(e[m]) > eps * tst1) m++;
            if (m > l)
            {
                int iter = 0;
                do
                {
                    if (++iter > 60) throw new PeftException("symmetric eigen-decomposition did not converge (non-finite weights?)");
                    // Shift from the leading 2×2 block.
                    double g = d[l];
                    double p = (d[l + 1] - g) / (2 * e[l]);
                    double r = Hypot(p, 1);
                    if (p < 0) r = -r;
                    d[l] = e[l] / (p + r);
                    d[l + 1] = e[l] * (p + r);
                    double dl1 = d[l + 1];
                    double h = g - d[l];
                    for (int i = l + 2; i < n; i++) d[i] -= h;
                    f += h;
                    // QL sweep from m−1 down to l with Givens rotations.
                    p = d[m];
                    double c = 1, c2 = 1, c3 = 1, s = 0, s2 = 0;
                    double el1 = e[l + 1];
                    for (int i = m - 1; i >= l; i--)
                    {
                        c3 = c2;
                        c2 = c;
                        s2 = s;
                        g = c * e[i];
                        h = c * p;
                        r = Hypot(p, e[i]);
                        e[i + 1] = s * r;
                        s = e[i] / r;
                        c = p / r;
                        p = c * d[i] - s * g;
                        d[i + 1] = h + s * (c * g + s * d[i]);
                        Rotate(z.AsSpan(i * n, n), z.AsSpan((i + 1) * n, n), c, s);
                    }
                    p = -s * s2 * c3 * el1 * e[l] / dl1;
                    e[l] = s * p;
                    d[l] = c * p;
                } while (Math.Abs(e[l]) > eps * tst1);
            }
            d[l] += f;
            e[l] = 0;
        }
    }

    /// <summary>(zi, zi1) ← (c·zi − s·zi1, s·zi + c·zi1), vectorized.</summary>
    static void Rotate(Span<double> zi, Span<double> zi1, double c, double s)
    {
        int k = 0, w = Vector<double>.Count;
        var vc = new Vector<double>(c);
        var vs = new Vector<double>(s);
        for (; k <= zi.Length - w; k += w)
        {
            var a = new Vector<double>(zi[k..]);
            var b = new Vector<double>(zi1[k..]);
            (vs * a + vc * b).CopyTo(zi1[k..]);
            (vc * a - vs * b).CopyTo(zi[k..]);
        }
        for (; k < zi.Length; k++)
        {
            double t = zi1[k];
            zi1[k] = s * zi[k] + c * t;
            zi[k] = c * zi[k] - s * t;
        }
    }

    static double Hypot(double a, double b)
    {
        a = Math.Abs(a); b = Math.Abs(b);
        if (a < b) (a, b) = (b, a);
        if (a == 0) return 0;
        double t = b / a;
        return a * Math.Sqrt(1 + t * t);
    }
}
