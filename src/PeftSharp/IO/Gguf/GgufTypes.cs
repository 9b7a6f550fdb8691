namespace PeftSharp.IO.Gguf;

/// <summary>GGUF metadata value types (ggml docs/gguf.md, gguf_type).</summary>
internal enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9,
    UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>ggml tensor types this project reads or writes (ggml_type numbering; others are named in errors only).</summary>
internal enum GgmlType : uint
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
}

/// <summary>Block layout of the ggml types: elements per block and bytes per block.</summary>
internal static class GgmlTypeInfo
{
    /// <summary>True for the types this project can decode into float weights.</summary>
    public static bool IsReadable(GgmlType t) => t is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0;

    /// <summary>(elements per block, bytes per block); false for a type number ggml has but this table does not
    /// know, or that ggml does not have at all.</summary>
    public static bool TryLayout(uint type, out int blockElements, out int blockBytes)
    {
        (blockElements, blockBytes) = (GgmlType)type switch
        {
            GgmlType.F32 => (1, 4),
            GgmlType.F16 or GgmlType.BF16 => (1, 2),
            GgmlType.Q4_0 => (32, 18),
            GgmlType.Q4_1 => (32, 20),
            GgmlType.Q5_0 => (32, 22),
            GgmlType.Q5_1 => (32, 24),
            GgmlType.Q8_0 => (32, 34),
            GgmlType.Q8_1 => (32, 36),
            GgmlType.Q2_K => (256, 84),
            GgmlType.Q3_K => (256, 110),
            GgmlType.Q4_K => (256, 144),
            GgmlType.Q5_K => (256, 176),
            GgmlType.Q6_K => (256, 210),
            GgmlType.Q8_K => (256, 292),
            _ => (0, 0),
        };
        return blockElements > 0;
    }

    public static string Name(uint type) => Enum.IsDefined(typeof(GgmlType), type) ? ((GgmlType)type).ToString() : $"type {type}";
}
