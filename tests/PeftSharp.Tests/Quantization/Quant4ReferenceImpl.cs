using PeftSharp.Quantization;

namespace PeftSharp.Tests.Quantization;

/// <summary>An independent, naive statement of the bitsandbytes 4-bit rules for tests: brute-force nearest code in
/// float64 with explicit tie rules, unpacked codes (one per element).</summary>
static class Quant4ReferenceImpl
{
    public static (byte[] codes, float[] absmax) Quantize(float[] w, int blockSize, Quant4Type type)
    {
        int nb = (w.Length + blockSize - 1) / blockSize;
        var absmax = new float[nb];
        var codes = new byte[w.Length];
        var table = Quant4Tables.Code(type).ToArray();
        for (int b = 0; b < nb; b++)
        {
            int s = b * blockSize, e = Math.Min(w.Length, s + blockSize);
            float m = 0;
            for (int i = s; i < e; i++) m = Math.Max(m, Math.Abs(w[i]));
            absmax[b] = m;
            float d = Math.Max(m, 1e-38f);
            for (int i = s; i < e; i++) codes[i] = NearestBrute(Math.Clamp(w[i] / d, -1f, 1f), table, type);
        }
        return (codes, absmax);
    }

    /// <summary>Nearest table value; on an exact tie NF4 takes the smaller value, FP4 (sign-magnitude) the smaller magnitude
    /// with the sign of s (s &lt; 0 → negative code).</summary>
    public static byte NearestBrute(float s, float[] table, Quant4Type type)
    {
        if (type == Quant4Type.NF4)
        {
            int best = 0;
            for (int k = 1; k < 16; k++)
            {
                // nearest by distance in float64; an exact tie (or a value within an ulp of the midpoint, where the
                // float32 threshold literal decides) is settled by the threshold rule
                double dl = s - (double)table[k - 1], du = table[k] - (double)s;
                if (s >= table[k] || (s > table[k - 1] && du < dl && Math.Abs(du - dl) > 1e-7)) best = k;
                else if (s > table[k - 1] && Math.Abs(du - dl) <= 1e-7 && s > Quant4Tables.NF4Midpoints[k - 1]) best = k;
            }
            return (byte)best;
        }
        float a = Math.Abs(s);
        int sign = s < 0 ? 8 : 0;
        // magnitudes by code 0..7, sorted
        var mags = Enumerable.Range(0, 8).Select(c => (code: c, v: table[c])).OrderBy(t => t.v).ToArray();
        int r = 0;
        for (int k = 1; k < 8; k++)
        {
            double dl = a - (double)mags[k - 1].v, du = mags[k].v - (double)a;
            if (a >= mags[k].v || (a > mags[k - 1].v && du < dl && Math.Abs(du - dl) > 1e-6)) r = k;
            else if (a > mags[k - 1].v && Math.Abs(du - dl) <= 1e-6 && a > Quant4Tables.FP4MagnitudeMidpoints[k - 1]) r = k;
        }
        return (byte)(mags[r].code | sign);
    }

    public static float[] Dequantize(byte[] codes, float[] scales, int blockSize, Quant4Type type)
    {
        var table = Quant4Tables.Code(type);
        var r = new float[codes.Length];
        for (int i = 0; i < r.Length; i++) r[i] = table[codes[i]] * scales[i / blockSize];
        return r;
    }

    public static byte[] Unpack(ReadOnlySpan<byte> packed, int n)
    {
        var c = new byte[n];
        for (int i = 0; i < n; i++) c[i] = (byte)((i & 1) == 0 ? packed[i >> 1] >> 4 : packed[i >> 1] & 0xF);
        return c;
    }
}
