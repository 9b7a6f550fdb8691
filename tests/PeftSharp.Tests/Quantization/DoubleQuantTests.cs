using PeftSharp.Tests.TestSupport;
using PeftSharp.Quantization;

namespace PeftSharp.Tests.Quantization;

[Collection("GlobalKernelSettings")]
public class DoubleQuantTests
{
    static float[] WorkedExampleInput()
    {
        var w = new float[128];
        for (int i = 0; i < 128; i++) w[i] = (float)(Math.Sin(0.37 * i + 0.1) * (i < 64 ? 0.02 : 0.05));
        return w;
    }

    [Fact]
    public void Worked_example_of_reference_section_5_6()
    {
        var w = WorkedExampleInput();
        using var plain = Quantized4Bit.Quantize(TestCompute.Cpu, w, [2, 64], Quant4Type.NF4, 64);
        Assert.Equal(0.019999152f, plain.Absmax![0], 8);
        Assert.Equal(0.049966767f, plain.Absmax[1], 8);
        var codes = Quant4ReferenceImpl.Unpack(plain.PackedSpan, 128);
        Assert.Equal(new byte[] { 8, 12, 14, 15, 15, 15, 14, 12 }, codes[..8]);
        Assert.Equal(new byte[] { 0x8c, 0xef, 0xff, 0xec }, plain.PackedSpan[..4].ToArray());
        var d = new float[128];
        plain.Dequantize(TestCompute.Cpu, d);
        double maxErr = 0;
        for (int i = 0; i < 128; i++) maxErr = Math.Max(maxErr, Math.Abs(w[i] - d[i]));
        Assert.Equal(0.00681, maxErr, 5);

        using var dq = Quantized4Bit.Quantize(TestCompute.Cpu, w, [2, 64], Quant4Type.NF4, 64, doubleQuant: true);
        Assert.Equal(0.034982961f, dq.NestedOffset, 8);
        Assert.Equal(new byte[] { 0, 255 }, dq.QuantizedAbsmax);
        Assert.Single(dq.NestedAbsmax!);
        Assert.Equal(0.014983809f, dq.NestedAbsmax![0], 8);
        Assert.Equal(0.020104507f, dq.BlockScale(0), 8);
        Assert.Equal(0.049966767f, dq.BlockScale(1), 8);
        // the codes do not depend on double quantization
        Assert.Equal(plain.PackedSpan.ToArray(), dq.PackedSpan.ToArray());
    }

    [Fact]
    public void Double_quant_hand_computed_case()
    {
        // absmax values 1, 2, 3 → offset 2, centered [-1, 0, 1], nested absmax 1, codes [0 (−0.99296875), 127 (0), 255 (1)]
        var absmax = new float[] { 1f, 2f, 3f };
        var (q, nested, offset) = Quantized4Bit.DoubleQuantize(absmax);
        Assert.Equal(2f, offset);
        Assert.Equal(new float[] { 1f }, nested);
        Assert.Equal(new byte[] { 0, 127, 255 }, q);
    }

    [Fact]
    public void Equal_absmax_values_give_a_zero_nested_block_and_exact_reconstruction()
    {
        var w = new float[256];
        for (int i = 0; i < 256; i++) w[i] = (i % 64 == 5) ? 0.25f : 0.01f * ((i % 7) - 3);
        using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [4, 64], Quant4Type.NF4, 64, doubleQuant: true);
        Assert.Equal(0.25f, q.NestedOffset);
        Assert.Equal(0f, q.NestedAbsmax![0]);
        Assert.All(q.QuantizedAbsmax!, c => Assert.Equal(127, c));
        for (int b = 0; b < 4; b++) Assert.Equal(0.25f, q.BlockScale(b));
    }

    [Theory]
    [InlineData(64, 3000)]
    [InlineData(32, 40000)]
    public void Reconstructed_absmax_error_is_within_half_a_dynamic_map_gap(int bs, int n)
    {
        var rng = new Random(n);
        var w = new float[n];
        for (int i = 0; i < n; i++) w[i] = (float)((rng.NextDouble() * 2 - 1) * (0.5 + 3 * rng.NextDouble()) * 0.02);
        using var plain = Quantized4Bit.Quantize(TestCompute.Cpu, w, [n], Quant4Type.NF4, bs);
        using var dq = Quantized4Bit.Quantize(TestCompute.Cpu, w, [n], Quant4Type.NF4, bs, doubleQuant: true);
        var map = DynamicMap.Signed;
        for (int b = 0; b < plain.BlockCount; b++)
        {
            float a = plain.Absmax![b];
            float nestedAbsmax = dq.NestedAbsmax![b / 256];
            float c = (a - dq.NestedOffset) / nestedAbsmax;
            // half the gap of the map interval containing c, in absmax units, plus float32 rounding of the two ops
            int k = 0;
            while (k < 254 && map[k + 1] < c) k++;
            double halfGap = (map[k + 1] - map[k]) / 2.0 * nestedAbsmax;
            double err = Math.Abs(dq.BlockScale(b) - a);
            Assert.True(err <= halfGap + 4e-7 * Math.Abs(a) + 1e-9, $"block {b}: error {err} > {halfGap}");
        }
        // and the weights themselves: within the NF4 half gap of the reconstructed scale plus the scale error
        var d = new float[n];
        dq.Dequantize(TestCompute.Cpu, d);
        for (int i = 0; i < n; i++)
        {
            int b = i / bs;
            float s = dq.BlockScale(b);
            double bound = Quant4Tables.MaxHalfGap(Quant4Type.NF4) * Math.Max(s, plain.Absmax![b]) + Math.Abs(s - plain.Absmax[b]) + 1e-9;
            Assert.True(Math.Abs(d[i] - w[i]) <= bound, $"i={i}");
        }
    }
}

[Collection("GlobalKernelSettings")]
public class DequantizeLargeTests
{
    [Theory]
    [InlineData(32, true)]
    [InlineData(128, false)]
    public void Whole_tensor_dequant_equals_the_naive_reference_across_many_blocks(int bs, bool dq)
    {
        // many more than the 64-block scale batch of DequantizeRange, with a partial last block
        int n = 150 * bs + 9;
        var w = TestSupport.Numerics.RandomFloats(new Random(bs), n, 0.05f);
        using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [n], Quant4Type.NF4, bs, dq);
        var d = new float[n];
        q.Dequantize(TestCompute.Cpu, d);
        var codes = Quant4ReferenceImpl.Unpack(q.PackedSpan, n);
        Assert.Equal(Quant4ReferenceImpl.Dequantize(codes, q.BlockScales(), bs, Quant4Type.NF4), d);
        var (refCodes, _) = Quant4ReferenceImpl.Quantize(w, bs, Quant4Type.NF4);
        Assert.Equal(refCodes, codes);
    }
}
