namespace PeftSharp.Quantization;

/// <summary>
/// bitsandbytes' 8-bit blockwise quantization against a 256-entry code (quantize_blockwise / dequantize_blockwise),
/// used for the double-quantized absmax (signed dynamic map, blocksize 256).
/// absmax[b] = max |x| over block b (float32); q = DynamicMap.Nearest(code, x / max(absmax, 1e-38)); dequant
/// x ≈ code[q] · absmax[b] in float32. A block of zeros gets the index of 0.0 in the code (CUDA would compute 0·∞ = NaN
/// there and store index 0; the dequantized value is 0 either way). Scaling divides (bitsandbytes' CUDA kernel
/// multiplies by the reciprocal, which can move a value within one ulp of a decision threshold by one code).
/// </summary>
internal static class Blockwise8
{
    const float MinScale = 1e-38f;

    // x (n), code (256) -> q (n), absmax (ceil(n/blockSize))
    public static void Quantize(ReadOnlySpan<float> x, int blockSize, ReadOnlySpan<float> code, Span<byte> q, Span<float> absmax)
    {
        int nBlocks = BlockCount(x.Length, blockSize);
        if (q.Length < x.Length || absmax.Length < nBlocks) throw new ArgumentException("output too small");
        if (code.Length != 256) throw new ArgumentException("code must have 256 entries");
        for (int b = 0; b < nBlocks; b++)
        {
            int start = b * blockSize, end = Math.Min(x.Length, start + blockSize);
            float amax = 0f;
            for (int i = start; i < end; i++) amax = MathF.Max(amax, MathF.Abs(x[i]));
            absmax[b] = amax;
            float d = MathF.Max(amax, MinScale);
            for (int i = start; i < end; i++) q[i] = DynamicMap.Nearest(code, Math.Clamp(x[i] / d, -1f, 1f));
        }
    }

    public static void Dequantize(ReadOnlySpan<byte> q, ReadOnlySpan<float> absmax, int blockSize, ReadOnlySpan<float> code, Span<float> x)
    {
        for (int i = 0; i < x.Length; i++) x[i] = code[q[i]] * absmax[i / blockSize];
    }

    public static int BlockCount(long n, int blockSize) => checked((int)((n + blockSize - 1) / blockSize));
}
