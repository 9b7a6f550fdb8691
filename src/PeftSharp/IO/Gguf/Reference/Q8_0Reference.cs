namespace PeftSharp.IO.Gguf.Reference;

/// <summary>Float64 reference of Q8_0 for tests: the same rule written plainly (scale in double, then rounded to
/// float32 and float16 as ggml stores it), element by element.</summary>
internal static class Q8_0Reference
{
    /// <summary>(float16 scale bits, codes) of one 32-value block.</summary>
    public static (Half Scale, sbyte[] Codes) EncodeBlock(ReadOnlySpan<float> x)
    {
        double amax = 0;
        for (int j = 0; j < x.Length; j++) amax = Math.Max(amax, Math.Abs((double)x[j]));
        float d = (float)(amax / 127.0);
        double id = d != 0 ? (double)(1f / d) : 0;
        var q = new sbyte[x.Length];
        for (int j = 0; j < x.Length; j++)
            q[j] = (sbyte)Math.Round((double)(float)(x[j] * (float)id), MidpointRounding.AwayFromZero);
        return ((Half)d, q);
    }

    public static double[] DecodeBlock(Half scale, sbyte[] codes) => codes.Select(c => c * (double)(float)scale).ToArray();
}
