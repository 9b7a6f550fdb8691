namespace PeftSharp.Kernels.Reference;

/// <summary>Naive float64 RMSNorm, the yardstick for <see cref="RmsNorm"/>.</summary>
internal static class RmsNormReference
{
    // y (n,c) = w · x / sqrt(mean(x²) + eps); rstd (n)
    // offset 1: Gemma's (1 + w)·x / sqrt(mean(x²) + eps)
    public static (double[] Y, double[] Rstd) Forward(double[] x, double[] w, int n, int c, double eps, double offset = 0)
    {
        var y = new double[n * c];
        var rstd = new double[n];
        for (int i = 0; i < n; i++)
        {
            double ss = 0;
            for (int j = 0; j < c; j++) ss += x[i * c + j] * x[i * c + j];
            double r = 1 / Math.Sqrt(ss / c + eps);
            rstd[i] = r;
            for (int j = 0; j < c; j++) y[i * c + j] = (w[j] + offset) * x[i * c + j] * r;
        }
        return (y, rstd);
    }

    // Chain rule through r(x): dx_k = r w_k dy_k − (r³ x_k / c) Σ_j dy_j w_j x_j;  dw_j = Σ_i dy_ij x_ij r_i.
    public static (double[] Dx, double[] Dw) Backward(double[] dy, double[] x, double[] w, int n, int c, double eps, double offset = 0)
    {
        if (offset != 0) w = w.Select(v => v + offset).ToArray();   // d/dw of (w + offset) is d/dw
        var dx = new double[n * c];
        var dw = new double[c];
        for (int i = 0; i < n; i++)
        {
            double ss = 0;
            for (int j = 0; j < c; j++) ss += x[i * c + j] * x[i * c + j];
            double r = 1 / Math.Sqrt(ss / c + eps);
            double dot = 0;
            for (int j = 0; j < c; j++) dot += dy[i * c + j] * w[j] * x[i * c + j];
            for (int j = 0; j < c; j++)
            {
                dx[i * c + j] = r * w[j] * dy[i * c + j] - r * r * r * x[i * c + j] * dot / c;
                dw[j] += dy[i * c + j] * x[i * c + j] * r;
            }
        }
        return (dx, dw);
    }
}
