namespace PeftSharp.Kernels.Reference;

/// <summary>Naive float64 RoPE straight from HF's `q·cos + rotate_half(q)·sin`, the yardstick for <see cref="Rope"/>.</summary>
internal static class RopeReference
{
    // x (N,H,D) at positions (N); inverse = rotate by −angle (the transpose, used for the backward).
    public static double[] Rotate(double[] x, int[] positions, int heads, int d, ReadOnlySpan<double> invFreq, bool inverse = false)
    {
        int half = d / 2;
        var o = new double[x.Length];
        for (int t = 0; t < positions.Length; t++)
            for (int h = 0; h < heads; h++)
            {
                int b = (t * heads + h) * d;
                for (int i = 0; i < d; i++)
                {
                    // emb = cat(freqs, freqs): element i uses frequency i mod D/2
                    double angle = positions[t] * invFreq[i % half] * (inverse ? -1 : 1);
                    double rotateHalf = i < half ? -x[b + i + half] : x[b + i - half];
                    o[b + i] = x[b + i] * Math.Cos(angle) + rotateHalf * Math.Sin(angle);
                }
            }
        return o;
    }
}
