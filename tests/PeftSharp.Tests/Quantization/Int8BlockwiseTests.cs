using PeftSharp.Tests.TestSupport;
using PeftSharp.Quantization;

namespace PeftSharp.Tests.Quantization;

public class Int8BlockwiseTests
{
    [Fact]
    public void Hand_computed_block()
    {
        // absmax 2 → scale 63.5: 1 → 63.5 → 64 (half to even), −0.5 → −31.75 → −32, 2 → 127, 0.01 → 0.635 → 1
        float[] x = [1f, -0.5f, 2f, 0.01f, 0f, 0f, 0f, 0f];
        var q = new sbyte[8];
        var am = new float[2];
        Int8Blockwise.Quantize(x, 4, q, am);
        Assert.Equal(new float[] { 2f, 0f }, am);
        Assert.Equal(new sbyte[] { 64, -32, 127, 1, 0, 0, 0, 0 }, q);
        var d = new float[8];
        Int8Blockwise.Dequantize(q, am, 4, d);
        Assert.Equal(64 * (2f / 127f), d[0]);
        Assert.Equal(2f, d[2], 6);
        Assert.Equal(0f, d[5]);
    }

    [Fact]
    public void Error_is_at_most_half_a_step_per_block()
    {
        var rng = new Random(21);
        var x = TestSupport.Numerics.RandomFloats(rng, 1000, 3f);
        var q = new sbyte[1000];
        var am = new float[Blockwise8.BlockCount(1000, 64)];
        Int8Blockwise.Quantize(x, 64, q, am);
        var d = new float[1000];
        Int8Blockwise.Dequantize(q, am, 64, d);
        for (int i = 0; i < 1000; i++)
            Assert.True(Math.Abs(x[i] - d[i]) <= am[i / 64] / 127f * 0.5f * (1 + 1e-5), $"i={i}");
    }

    [Fact]
    public void Non_finite_input_is_refused()
    {
        float[] x = [1f, float.NaN];
        var e = Assert.Throws<PeftException>(() => Int8Blockwise.Quantize(x, 64, new sbyte[2], new float[1], "w.int8"));
        Assert.Contains("w.int8", e.Message);
    }
}
