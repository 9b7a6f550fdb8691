using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace PeftSharp.Tensors;

/// <summary>Bulk dtype conversion between storage types and float32.</summary>
internal static unsafe class DTypeConvert
{
    /// <summary>Widens <paramref name="dst"/>.Length elements of <paramref name="dtype"/> at <paramref name="src"/> to float32.</summary>
    public static void ToFloat(byte* src, DType dtype, Span<float> dst)
    {
        switch (dtype)
        {
            case DType.F32:
                new ReadOnlySpan<float>(src, dst.Length).CopyTo(dst);
                break;
            case DType.F16:
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(src, dst.Length), dst);
                break;
            case DType.BF16:
                Bf16ToFloat(new ReadOnlySpan<ushort>(src, dst.Length), dst);
                break;
            default:
                throw new NotSupportedException($"cannot widen {dtype} to float32");
        }
    }

    /// <summary>Narrows float32 to <paramref name="dtype"/> (round to nearest even) into <paramref name="dst"/>.</summary>
    public static void FromFloat(ReadOnlySpan<float> src, DType dtype, byte* dst)
    {
        switch (dtype)
        {
            case DType.F32:
                src.CopyTo(new Span<float>(dst, src.Length));
                break;
            case DType.F16:
                TensorPrimitives.ConvertToHalf(src, new Span<Half>(dst, src.Length));
                break;
            case DType.BF16:
                var d = new Span<ushort>(dst, src.Length);
                for (int i = 0; i < src.Length; i++) d[i] = Bf16.FromFloat(src[i]);
                break;
            default:
                throw new NotSupportedException($"cannot narrow float32 to {dtype}");
        }
    }

    public static void Bf16ToFloat(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            fixed (ushort* s = src)
            fixed (float* d = dst)
            {
                for (; i + 8 <= src.Length; i += 8)
                {
                    var w = Vector256.WidenLower(Vector128.Load(s + i).ToVector256Unsafe());
                    Vector256.Store(Vector256.ShiftLeft(w, 16).AsSingle(), d + i);
                }
            }
        }
        for (; i < src.Length; i++) dst[i] = Bf16.ToFloat(src[i]);
    }
}
