using ILGPU;

namespace PeftSharp.Cuda.Kernels;

/// <summary>
/// bitsandbytes 4-bit dequantization into a reused float32 buffer, as the CPU does it: element e of the flattened weight
/// has code (e even: high nibble of byte e/2, else low nibble) and block e / blockSize; value = map[code] · scale(block).
/// With double quantization scale(b) = nestedMap[q[b]] · nestedAbsmax[b / 256] + offset.
/// </summary>
internal static class QuantKernels
{
    static int Code(ArrayView<byte> packed, long e)
    {
        int b = packed[e >> 1];
        return (e & 1) == 0 ? b >> 4 : b & 0xF;
    }

    // dst[i] = element start + i
    public static void Dequantize(Index1D i, ArrayView<byte> packed, ArrayView<float> absmax, ArrayView<float> map,
        ArrayView<float> dst, long start, int blockSize)
    {
        long e = start + i;
        dst[i] = map[Code(packed, e)] * absmax[e / blockSize];
    }

    public static void DequantizeDouble(Index1D i, ArrayView<byte> packed, ArrayView<byte> qabsmax, ArrayView<float> nestedAbsmax,
        ArrayView<float> nestedMap, ArrayView<float> map, ArrayView<float> dst, long start, int blockSize, float offset)
    {
        long e = start + i;
        long block = e / blockSize;
        float scale = nestedMap[(int)qabsmax[block]] * nestedAbsmax[block / 256] + offset;
        dst[i] = map[Code(packed, e)] * scale;
    }
}
