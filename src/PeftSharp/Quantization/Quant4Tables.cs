namespace PeftSharp.Quantization;

/// <summary>
/// bitsandbytes' 4-bit code tables (float32, indexed by the 4-bit code) and the exact nearest-code rule.
/// Rule (reference §5.2): a scaled value s ∈ [-1, 1] gets the code whose table value is nearest, decided by the
/// thresholds of bitsandbytes' CUDA decision trees (the midpoints of adjacent table values, as float32 literals) with
/// strict '&gt;' — a value exactly on a threshold goes to the lower neighbour. NF4 is searched by value; FP4 is sign-magnitude as in the CUDA tree: the sign bit is
/// (s &lt; 0), the magnitude is searched on |s| (so -0.0 gets code 0, and a negative value on a midpoint goes to
/// the smaller magnitude).
/// </summary>
internal static class Quant4Tables
{
    /// <summary>NF4 values by code (bitsandbytes functional.py / CUDA LUT), exact float32 literals.</summary>
    public static ReadOnlySpan<float> NF4 =>
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    /// <summary>FP4 values by code: raw E2M1 values [0, 0.0625, 8, 12, 4, 6, 2, 3] (and negated for codes 8–15) divided
    /// by 12 in float32, as bitsandbytes builds them. Not sorted.</summary>
    public static readonly float[] FP4 = BuildFp4();

    /// <summary>The 15 thresholds between adjacent NF4 values: the literals of bitsandbytes' CUDA decision tree
    /// (dQuantizeNF4), i.e. the float64 midpoints printed to 16 digits and rounded to float32. Where the float32 midpoint
    /// is an exact tie the decimal literal decides the rounding, so these are taken as literals, not recomputed.</summary>
    public static readonly float[] NF4Midpoints =
    [
        -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f, -0.23460740596055984f,
        -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f, 0.1202552504837513f, 0.2035212516784668f,
        0.2920137718319893f, 0.3893125355243683f, 0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f,
    ];

    /// <summary>FP4 magnitudes in increasing order and the 3-bit code of each: 0, 1/192, 1/6, 1/4, 1/3, 1/2, 2/3, 1.</summary>
    public static readonly float[] FP4SortedMagnitudes;
    public static readonly byte[] FP4MagnitudeCodes = [0, 1, 6, 7, 4, 5, 2, 3];
    /// <summary>The 7 thresholds between adjacent FP4 magnitudes: the literals of bitsandbytes' CUDA tree (dQuantizeFP4).
    /// They are the midpoints rounded to 7–8 decimal digits (up to 3.3e-7 from the exact midpoints).</summary>
    public static readonly float[] FP4MagnitudeMidpoints = [0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f];

    static Quant4Tables()
    {
        FP4SortedMagnitudes = new float[8];
        for (int k = 0; k < 8; k++) FP4SortedMagnitudes[k] = FP4[FP4MagnitudeCodes[k]];
    }

    public static ReadOnlySpan<float> Code(Quant4Type t) => t == Quant4Type.NF4 ? NF4 : FP4;

    static float[] BuildFp4()
    {
        float[] raw = [0f, 0.0625f, 8f, 12f, 4f, 6f, 2f, 3f];
        var t = new float[16];
        for (int k = 0; k < 8; k++)
        {
            t[k] = raw[k] / 12f;
            t[k + 8] = -raw[k] / 12f; // code 8 is -0.0, as in bitsandbytes
        }
        return t;
    }

    /// <summary>The 4-bit code of a scaled value s (already clamped to [-1, 1], finite).</summary>
    public static byte Nearest(float s, Quant4Type t)
    {
        if (t == Quant4Type.NF4)
        {
            // NF4 codes are in increasing value order, so the code is the number of midpoints strictly below s.
            int c = 0;
            var mids = NF4Midpoints;
            for (int k = 0; k < mids.Length; k++) c += s > mids[k] ? 1 : 0;
            return (byte)c;
        }
        else
        {
            int sign = s < 0f ? 8 : 0;
            float a = MathF.Abs(s);
            int rank = 0;
            var mids = FP4MagnitudeMidpoints;
            for (int k = 0; k < mids.Length; k++) rank += a > mids[k] ? 1 : 0;
            return (byte)(FP4MagnitudeCodes[rank] | sign);
        }
    }

    /// <summary>Largest half-gap between adjacent values of the table: the worst |s − code(s)| for s ∈ [-1, 1].</summary>
    public static float MaxHalfGap(Quant4Type t)
    {
        // FP4 is symmetric, so its magnitudes give the same gaps as the full signed table.
        float[] sorted = t == Quant4Type.NF4 ? NF4.ToArray() : FP4SortedMagnitudes;
        float g = 0;
        for (int k = 0; k + 1 < sorted.Length; k++) g = MathF.Max(g, (sorted[k + 1] - sorted[k]) * 0.5f);
        return g;
    }
}
