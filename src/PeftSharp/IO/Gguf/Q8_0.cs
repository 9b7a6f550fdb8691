namespace PeftSharp.IO.Gguf;

/// <summary>
/// ggml's Q8_0: blocks of 32 values, each stored as a float16 scale d = max|x| / 127 and 32 signed bytes
/// q = round(x / d) (half away from zero), 34 bytes per block. Decoding is q · d. The encoder follows ggml's reference
/// quantizer (quantize_row_q8_0_ref): the byte codes use the float32 scale, the stored scale is its float16 rounding.
/// </summary>
internal static class Q8_0
{
    public const int BlockElements = 32;
    public const int BlockBytes = 34;

    public static long ByteSize(long elements) => elements / BlockElements * BlockBytes;

    /// <summary>Encodes <paramref name="x"/> (a multiple of 32 long) into <paramref name="dst"/> (34 bytes per 32 values).</summary>
    public static void Encode(ReadOnlySpan<float> x, Span<byte> dst)
    {
        if (x.Length % BlockElements != 0) throw new ArgumentException($"Q8_0 needs a multiple of {BlockElements} values, got {x.Length}");
        int blocks = x.Length / BlockElements;
        if (dst.Length < blocks * BlockBytes) throw new ArgumentException("Q8_0 destination too small");
        for (int b = 0; b < blocks; b++)
        {
            var xs = x.Slice(b * BlockElements, BlockElements);
            var o = dst.Slice(b * BlockBytes, BlockBytes);
            float amax = 0;
            foreach (var v in xs) amax = MathF.Max(amax, MathF.Abs(v));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            BitConverter.TryWriteBytes(o, (Half)d);
            for (int j = 0; j < BlockElements; j++) o[2 + j] = (byte)(sbyte)MathF.Round(xs[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>Decodes Q8_0 blocks into float32 values (<paramref name="dst"/>.Length a multiple of 32).</summary>
    public static void Decode(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blocks = dst.Length / BlockElements;
        if (dst.Length % BlockElements != 0 || src.Length < blocks * BlockBytes) throw new ArgumentException("Q8_0 sizes do not match");
        for (int b = 0; b < blocks; b++)
        {
            var s = src.Slice(b * BlockBytes, BlockBytes);
            float d = (float)BitConverter.ToHalf(s);
            var o = dst.Slice(b * BlockElements, BlockElements);
            for (int j = 0; j < BlockElements; j++) o[j] = (sbyte)s[2 + j] * d;
        }
    }
}
