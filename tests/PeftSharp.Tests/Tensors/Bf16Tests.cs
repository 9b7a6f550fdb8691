using PeftSharp.Tensors;

namespace PeftSharp.Tests.Tensors;

public class Bf16Tests
{
    [Theory]
    [InlineData(1.0f, (ushort)0x3F80)]
    [InlineData(-2.0f, (ushort)0xC000)]
    [InlineData(1.00390625f, (ushort)0x3F80)] // halfway 1 + 2^-8: ties to even (down)
    [InlineData(1.01171875f, (ushort)0x3F82)] // halfway 1 + 3·2^-8: ties to even (up)
    [InlineData(float.PositiveInfinity, (ushort)0x7F80)]
    public void FromFloat_RoundsToNearestEven(float f, ushort expected) => Assert.Equal(expected, Bf16.FromFloat(f));

    [Fact]
    public void FromFloat_KeepsNaN() => Assert.True(float.IsNaN(Bf16.ToFloat(Bf16.FromFloat(float.NaN))));

    [Fact]
    public unsafe void VectorWidening_MatchesScalar()
    {
        var rng = new Random(1);
        var src = new ushort[37];
        for (int i = 0; i < src.Length; i++) src[i] = (ushort)rng.Next(0, 0x7F80);
        var dst = new float[src.Length];
        DTypeConvert.Bf16ToFloat(src, dst);
        for (int i = 0; i < src.Length; i++) Assert.Equal(Bf16.ToFloat(src[i]), dst[i]);
    }
}
