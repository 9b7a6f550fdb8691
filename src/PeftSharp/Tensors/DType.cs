namespace PeftSharp.Tensors;

/// <summary>Storage element types. Compute is always float32; frozen weights keep their storage type.</summary>
public enum DType
{
    /// <summary>IEEE 754 binary32 float, 4 bytes.</summary>
    F32,
    /// <summary>bfloat16: the upper 16 bits of a float32 (8-bit exponent, 7-bit mantissa), 2 bytes.</summary>
    BF16,
    /// <summary>IEEE 754 binary16 half float (5-bit exponent, 10-bit mantissa), 2 bytes.</summary>
    F16,
    /// <summary>Raw bytes: packed 4-bit codes (two per byte, high nibble first), 8-bit codes, or opaque data.</summary>
    U8,
    /// <summary>Signed 32-bit integer, 4 bytes.</summary>
    I32,
    /// <summary>Signed 64-bit integer, 8 bytes.</summary>
    I64,
}

internal static class DTypeInfo
{
    /// <summary>Bytes per element (U8 = 1 byte, which for packed 4-bit holds two codes).</summary>
    public static int Size(this DType t) => t switch
    {
        DType.F32 or DType.I32 => 4,
        DType.BF16 or DType.F16 => 2,
        DType.U8 => 1,
        DType.I64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    /// <summary>The safetensors spelling of the dtype.</summary>
    public static string SafetensorsName(this DType t) => t switch
    {
        DType.F32 => "F32",
        DType.BF16 => "BF16",
        DType.F16 => "F16",
        DType.U8 => "U8",
        DType.I32 => "I32",
        DType.I64 => "I64",
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    public static bool TryParseSafetensors(string name, out DType t)
    {
        switch (name)
        {
            case "F32": t = DType.F32; return true;
            case "BF16": t = DType.BF16; return true;
            case "F16": t = DType.F16; return true;
            case "U8": t = DType.U8; return true;
            case "I32": t = DType.I32; return true;
            case "I64": t = DType.I64; return true;
            default: t = default; return false;
        }
    }
}
