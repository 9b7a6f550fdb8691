using PeftSharp.Kernels;

namespace PeftSharp.Quantization;

/// <summary>
/// Plain symmetric int8 blockwise quantization (the baseline the 4-bit types are compared with; bitsandbytes'
/// int8 rule applied per block instead of per row): absmax[b] = max |x| over the flattened block,
/// q = round_half_even(x · (127 / absmax)) ∈ [−127, 127] (float32 product), dequant x ≈ q · (absmax / 127).
/// An all-zero block stores absmax 0 and q = 0. Non-finite input is refused.
/// </summary>
internal static class Int8Blockwise
{
    // x (n) -> q (n), absmax (ceil(n/blockSize))
    public static void Quantize(ReadOnlySpan<float> x, int blockSize, Span<sbyte> q, Span<float> absmax, string name = "weight")
    {
        if (blockSize <= 0) throw new PeftException($"tensor '{name}': blocksize must be positive, got {blockSize}");
        int nBlocks = Blockwise8.BlockCount(x.Length, blockSize);
        if (q.Length < x.Length || absmax.Length < nBlocks) throw new ArgumentException("output too small");
        int bad = Quant4Kernels.FirstNonFinite(x);
        if (bad >= 0) throw new PeftException($"tensor '{name}': non-finite value {x[bad]} at flat index {bad}; int8 quantization needs finite weights");
        for (int b = 0; b < nBlocks; b++)
        {
            int start = b * blockSize, len = Math.Min(blockSize, x.Length - start);
            var blk = x.Slice(start, len);
            float amax = Quant4Kernels.AbsMax(blk);
            absmax[b] = amax;
            float inv = amax > 0 ? 127f / amax : 0f;
            for (int i = 0; i < len; i++)
                q[start + i] = (sbyte)Math.Clamp(MathF.Round(blk[i] * inv, MidpointRounding.ToEven), -127f, 127f);
        }
    }

    public static void Dequantize(ReadOnlySpan<sbyte> q, ReadOnlySpan<float> absmax, int blockSize, Span<float> x)
    {
        for (int i = 0; i < x.Length; i++) x[i] = q[i] * (absmax[i / blockSize] / 127f);
    }
}
