namespace PeftSharp.Kernels.Reference;

/// <summary>Naive float64 RoPE straight from HF's `q·cos + rotate_half(q)·sin`, the yardstick for <see cref="Rope"/>.</summary>
internal static class RopeReference
{
    // x (N,H,D) at positions (N); inverse = rotate by −angle (the transpose, used for the backward); cos and sin
    // multiplied by scale (LongRoPE's attention factor: transformers scales both after computing them).
    public static double[] Rotate(double[] x, int[] positions, int heads, int d, ReadOnlySpan<double> invFreq, bool inverse = false,
        double scale = 1)
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
                    o[b + i] = x[b + i] * (Math.Cos(angle) * scale) + rotateHalf * (Math.Sin(angle) * scale);
                }
            }
        return o;
    }

    /// <summary>transformers' `_compute_longrope_parameters`, written out: inv_freq[i] = 1 / (ext_factors[i] ·
    /// base^(2i/dim)) with ext_factors the long list when the sequence is longer than the original context, else the
    /// short one; attention factor √(1 + ln(s) / ln(original)) for s = max_positions / original &gt; 1, else 1.</summary>
    public static (double[] InvFreq, double AttentionFactor) LongRope(int d, double theta, IReadOnlyList<double> shortFactor,
        IReadOnlyList<double> longFactor, int original, int maxPositions, int sequenceLength)
    {
        var ext = sequenceLength > original ? longFactor : shortFactor;
        var inv = new double[d / 2];
        for (int i = 0; i < inv.Length; i++) inv[i] = 1.0 / (ext[i] * Math.Pow(theta, (2.0 * i) / d));
        double s = (double)maxPositions / original;
        return (inv, s <= 1 ? 1 : Math.Sqrt(1 + Math.Log(s) / Math.Log(original)));
    }
}
