using PeftSharp.Quantization;

namespace PeftSharp.Tests.Peft;

/// <summary>
/// An independent float64 statement of PEFT's loftq_init for tests: NF4 by brute-force nearest code per block of 64
/// (absmax scaling, no double quantization: PEFT's bnb Params4bit(compress_statistics=False)), the full SVD of the
/// residual by one-sided Jacobi rotations (not the Gram/eigen route of TruncatedSvd), and the factors
/// B = U·√(S/s), A = √(S/s)·Vᵀ. Everything stays in float64; nothing is shared with the implementation but the NF4 table.
/// </summary>
internal static class LoftQReference
{
    public sealed record Step(double[] Q, double[] A, double[] B, double Error);

    /// <summary>The state after each of <paramref name="iterations"/> steps, and ‖W − NF4(W)‖/‖W‖.</summary>
    public static (List<Step> Steps, double Plain) Run(double[] w, int rows, int cols, int r, double s, int iterations)
    {
        double norm = Math.Sqrt(w.Sum(x => x * x));
        var res = (double[])w.Clone();
        var steps = new List<Step>();
        double plain = 0;
        for (int it = 0; it < iterations; it++)
        {
            var q = Nf4(res, 64);
            var e = new double[w.Length];
            for (int i = 0; i < e.Length; i++) e[i] = w[i] - q[i];
            if (it == 0) plain = Math.Sqrt(e.Sum(x => x * x)) / norm;
            var (u, sv, v) = JacobiSvd(e, rows, cols);   // u (rows, k), v (cols, k), k = min(rows, cols), σ descending
            int k = sv.Length;
            var a = new double[r * cols];
            var b = new double[rows * r];
            for (int j = 0; j < r; j++)
            {
                double root = Math.Sqrt(sv[j] / s);
                for (int c = 0; c < cols; c++) a[j * cols + c] = root * v[c * k + j];
                for (int o = 0; o < rows; o++) b[o * r + j] = u[o * k + j] * root;
            }
            var sba = ScaledProduct(b, a, rows, cols, r, s);
            double err = 0;
            for (int i = 0; i < e.Length; i++) err += (e[i] - sba[i]) * (e[i] - sba[i]);
            steps.Add(new Step(q, a, b, Math.Sqrt(err) / norm));
            for (int i = 0; i < res.Length; i++) res[i] = w[i] - sba[i];
        }
        return (steps, plain);
    }

    public static double[] ScaledProduct(double[] b, double[] a, int rows, int cols, int r, double s)
    {
        var d = new double[rows * cols];
        for (int o = 0; o < rows; o++)
            for (int c = 0; c < cols; c++)
            {
                double acc = 0;
                for (int j = 0; j < r; j++) acc += b[o * r + j] * a[j * cols + c];
                d[o * cols + c] = s * acc;
            }
        return d;
    }

    /// <summary>Blockwise absmax NF4 over the flattened tensor, nearest code by distance (ties to the lower code).</summary>
    public static double[] Nf4(double[] x, int block)
    {
        var table = Quant4Tables.Code(Quant4Type.NF4).ToArray().Select(v => (double)v).ToArray();
        var q = new double[x.Length];
        for (int start = 0; start < x.Length; start += block)
        {
            int end = Math.Min(x.Length, start + block);
            double amax = 0;
            for (int i = start; i < end; i++) amax = Math.Max(amax, Math.Abs(x[i]));
            for (int i = start; i < end; i++)
            {
                double v = amax == 0 ? 0 : x[i] / amax;
                int best = 0;
                for (int c = 1; c < table.Length; c++) if (Math.Abs(v - table[c]) < Math.Abs(v - table[best])) best = c;
                q[i] = table[best] * amax;
            }
        }
        return q;
    }

    /// <summary>Thin SVD by one-sided Jacobi (Hestenes): u (rows, k), σ (k) descending, v (cols, k), k = min(rows, cols).</summary>
    public static (double[] U, double[] S, double[] V) JacobiSvd(double[] m, int rows, int cols)
    {
        if (rows < cols)
        {
            var t = new double[m.Length];
            for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j];
            var (u2, s2, v2) = JacobiSvd(t, cols, rows);
            return (v2, s2, u2);
        }
        int n = cols;
        var a = (double[])m.Clone();           // (rows, n): columns get orthogonalized
        var v = new double[n * n];
        for (int i = 0; i < n; i++) v[i * n + i] = 1;
        for (int sweep = 0; sweep < 60; sweep++)
        {
            double off = 0;
            for (int p = 0; p < n - 1; p++)
                for (int q = p + 1; q < n; q++)
                {
                    double alpha = 0, beta = 0, gamma = 0;
                    for (int i = 0; i < rows; i++)
                    {
                        double x = a[i * n + p], y = a[i * n + q];
                        alpha += x * x; beta += y * y; gamma += x * y;
                    }
                    if (Math.Abs(gamma) <= 1e-15 * Math.Sqrt(alpha * beta)) continue;
                    off = Math.Max(off, Math.Abs(gamma) / Math.Sqrt(alpha * beta));
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = Math.Sign(zeta) / (Math.Abs(zeta) + Math.Sqrt(1 + zeta * zeta));
                    if (zeta == 0) t = 1;
                    double c = 1 / Math.Sqrt(1 + t * t), sn = c * t;
                    for (int i = 0; i < rows; i++)
                    {
                        double x = a[i * n + p], y = a[i * n + q];
                        a[i * n + p] = c * x - sn * y;
                        a[i * n + q] = sn * x + c * y;
                    }
                    for (int i = 0; i < n; i++)
                    {
                        double x = v[i * n + p], y = v[i * n + q];
                        v[i * n + p] = c * x - sn * y;
                        v[i * n + q] = sn * x + c * y;
                    }
                }
            if (off < 1e-14) break;
        }
        var sigma = new double[n];
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int i = 0; i < rows; i++) s += a[i * n + j] * a[i * n + j];
            sigma[j] = Math.Sqrt(s);
        }
        var order = Enumerable.Range(0, n).OrderByDescending(j => sigma[j]).ToArray();
        var u = new double[rows * n];
        var vs = new double[n * n];
        var ss = new double[n];
        for (int k = 0; k < n; k++)
        {
            int j = order[k];
            ss[k] = sigma[j];
            for (int i = 0; i < rows; i++) u[i * n + k] = sigma[j] > 0 ? a[i * n + j] / sigma[j] : 0;
            for (int i = 0; i < n; i++) vs[i * n + k] = v[i * n + j];
        }
        return (u, ss, vs);
    }
}
