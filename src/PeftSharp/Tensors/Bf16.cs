namespace PeftSharp.Tensors;

/// <summary>bfloat16 ⇄ float32: the top 16 bits of an IEEE float32; narrowing rounds to nearest even, NaN stays NaN.</summary>
internal static class Bf16
{
    public static float ToFloat(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    public static ushort FromFloat(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7FFF_FFFF) > 0x7F80_0000) return (ushort)((u >> 16) | 0x40); // quiet NaN
        uint roundingBias = 0x7FFF + ((u >> 16) & 1);
        return (ushort)((u + roundingBias) >> 16);
    }
}
