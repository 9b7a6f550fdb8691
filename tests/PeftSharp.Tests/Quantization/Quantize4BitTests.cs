using PeftSharp.Compute;
using PeftSharp.Tests.TestSupport;
using PeftSharp.Quantization;
using PeftSharp.Tensors;

namespace PeftSharp.Tests.Quantization;

[Collection("GlobalKernelSettings")]
public class Quantize4BitTests
{
    static readonly float[] ReferenceNf4Midpoints =
    [
        -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f, -0.23460740596055984f,
        -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f, 0.1202552504837513f, 0.2035212516784668f,
        0.2920137718319893f, 0.3893125355243683f, 0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f,
    ];

    [Fact]
    public void Nf4_midpoints_equal_the_cuda_thresholds()
    {
        Assert.Equal(ReferenceNf4Midpoints, Quant4Tables.NF4Midpoints);
        // each threshold lies within one float32 ulp of the exact midpoint of its neighbours
        for (int k = 0; k < 15; k++)
        {
            double mid = ((double)Quant4Tables.NF4[k] + Quant4Tables.NF4[k + 1]) / 2;
            Assert.True(Math.Abs(Quant4Tables.NF4Midpoints[k] - mid) <= Math.Abs(MathF.BitIncrement(Quant4Tables.NF4Midpoints[k]) - Quant4Tables.NF4Midpoints[k]));
        }
        for (int k = 0; k < 7; k++)
        {
            double mid = ((double)Quant4Tables.FP4SortedMagnitudes[k] + Quant4Tables.FP4SortedMagnitudes[k + 1]) / 2;
            Assert.True(Math.Abs(Quant4Tables.FP4MagnitudeMidpoints[k] - mid) < 3.4e-7, $"fp4 threshold {k}");
        }
    }

    [Fact]
    public void Fp4_table_is_e2m1_over_12_sign_magnitude()
    {
        float[] raw = [0, 0.0625f, 8, 12, 4, 6, 2, 3];
        for (int c = 0; c < 8; c++)
        {
            Assert.Equal(raw[c] / 12f, Quant4Tables.FP4[c]);
            Assert.Equal(-raw[c] / 12f, Quant4Tables.FP4[c + 8]);
        }
        Assert.True(float.IsNegative(Quant4Tables.FP4[8]));
        Assert.Equal(1f / 6f, Quant4Tables.MaxHalfGap(Quant4Type.FP4), 6);
    }

    static byte[] Codes(Quantized4Bit q) => Quant4ReferenceImpl.Unpack(q.PackedSpan, (int)q.ElementCount);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Each_nf4_midpoint_goes_to_the_lower_code_and_just_above_to_the_upper(bool avx)
    {
        using var ctx = TestCompute.With(new ComputeOptions { VectorKernels = avx });
        {
            // absmax 1.0 (element 0) makes the scaled value equal to the input exactly
            var mids = Quant4Tables.NF4Midpoints;
            var w = new List<float> { 1.0f };
            foreach (var m in mids) { w.Add(m); w.Add(MathF.BitIncrement(m)); }
            using var q = Quantized4Bit.Quantize(ctx, w.ToArray(), [w.Count], Quant4Type.NF4, blockSize: 32);
            Assert.Equal(1.0f, q.Absmax![0]);
            var c = Codes(q);
            Assert.Equal(15, c[0]);
            for (int k = 0; k < mids.Length; k++)
            {
                Assert.Equal(k, c[1 + 2 * k]);
                Assert.Equal(k + 1, c[2 + 2 * k]);
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Fp4_midpoints_go_to_the_smaller_magnitude_with_the_sign_bit(bool avx)
    {
        using var ctx = TestCompute.With(new ComputeOptions { VectorKernels = avx });
        {
            var mids = Quant4Tables.FP4MagnitudeMidpoints;
            var codes = Quant4Tables.FP4MagnitudeCodes;
            var w = new List<float> { 1.0f };
            foreach (var m in mids) { w.Add(m); w.Add(MathF.BitIncrement(m)); w.Add(-m); w.Add(-MathF.BitIncrement(m)); }
            using var q = Quantized4Bit.Quantize(ctx, w.ToArray(), [w.Count], Quant4Type.FP4, blockSize: 32);
            var c = Codes(q);
            Assert.Equal(3, c[0]); // 1.0 = 12/12 is code 0b0011
            for (int k = 0; k < mids.Length; k++)
            {
                Assert.Equal(codes[k], c[1 + 4 * k]);
                Assert.Equal(codes[k + 1], c[2 + 4 * k]);
                Assert.Equal(codes[k] | 8, c[3 + 4 * k]);
                Assert.Equal(codes[k + 1] | 8, c[4 + 4 * k]);
            }
        }
    }

    [Fact]
    public void Zero_block_gets_the_code_of_zero_and_dequantizes_to_zero()
    {
        var w = new float[128];
        for (int i = 64; i < 128; i++) w[i] = 0.01f * (i - 100);
        using var nf = Quantized4Bit.Quantize(TestCompute.Cpu, w, [2, 64], Quant4Type.NF4, 64);
        Assert.Equal(0f, nf.Absmax![0]);
        Assert.All(nf.PackedSpan[..32].ToArray(), b => Assert.Equal(0x77, b));
        using var fp = Quantized4Bit.Quantize(TestCompute.Cpu, w, [2, 64], Quant4Type.FP4, 64);
        Assert.All(fp.PackedSpan[..32].ToArray(), b => Assert.Equal(0x00, b));
        var d = new float[128];
        nf.Dequantize(TestCompute.Cpu, d);
        Assert.All(d[..64], v => Assert.Equal(0f, v));
        Assert.Equal(0f, Codes(fp).Take(64).Select(c => (float)c).Sum());
        // -0.0 is not negative for FP4's sign bit
        using var negZero = Quantized4Bit.Quantize(TestCompute.Cpu, [-0.0f, 1f], [2], Quant4Type.FP4, 32);
        Assert.Equal(0x03, negZero.PackedSpan[0]);
    }

    [Fact]
    public void Partial_last_block_and_odd_count_follow_the_reference()
    {
        var rng = new Random(11);
        var w = TestSupport.Numerics.RandomFloats(rng, 101, 0.3f);
        foreach (var type in new[] { Quant4Type.NF4, Quant4Type.FP4 })
        {
            using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [101], type, 64);
            var (codes, absmax) = Quant4ReferenceImpl.Quantize(w, 64, type);
            Assert.Equal(2, q.BlockCount);
            Assert.Equal(absmax, q.Absmax);
            Assert.Equal(51, q.PackedByteLength);
            Assert.Equal(codes, Codes(q));
            // the pad nibble is the code of 0.0 (bitsandbytes pads the scaled values with 0.0)
            Assert.Equal(type == Quant4Type.NF4 ? 7 : 0, q.PackedSpan[50] & 0xF);
            var d = new float[101];
            q.Dequantize(TestCompute.Cpu, d);
            Assert.Equal(Quant4ReferenceImpl.Dequantize(codes, absmax, 64, type), d);
        }
    }

    [Fact]
    public void Blocksizes_32_to_4096_are_accepted_others_rejected()
    {
        var w = TestSupport.Numerics.RandomFloats(new Random(1), 300);
        foreach (int bs in Quantized4Bit.AllowedBlockSizes)
        {
            using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [300], Quant4Type.NF4, bs);
            Assert.Equal((300 + bs - 1) / bs, q.BlockCount);
        }
        foreach (int bs in new[] { 0, 16, 48, 100, 8192, -64 })
        {
            var e = Assert.Throws<PeftException>(() => Quantized4Bit.Quantize(TestCompute.Cpu, w, [300], Quant4Type.NF4, bs, name: "q_proj.weight"));
            Assert.Contains("blocksize", e.Message);
            Assert.Contains("q_proj.weight", e.Message);
        }
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void Non_finite_weights_are_refused_with_name_and_index(float bad)
    {
        var w = TestSupport.Numerics.RandomFloats(new Random(2), 1000);
        w[777] = bad;
        var e = Assert.Throws<PeftException>(() => Quantized4Bit.Quantize(TestCompute.Cpu, w, [10, 100], Quant4Type.NF4, 64, name: "model.layers.0.mlp.up_proj.weight"));
        Assert.Contains("model.layers.0.mlp.up_proj.weight", e.Message);
        Assert.Contains("777", e.Message);
        // several bad values in different threads' ranges: the first index is reported
        var big = TestSupport.Numerics.RandomFloats(new Random(3), 64 * 2048);
        big[100_000] = bad;
        big[70_000] = bad;
        var e2 = Assert.Throws<PeftException>(() => Quantized4Bit.Quantize(TestCompute.Cpu, big, [64, 2048], Quant4Type.FP4, 64, name: "w"));
        Assert.Contains("index 70000", e2.Message);
    }

    [Fact]
    public void QuantizeLike_reuses_type_blocksize_and_double_quant()
    {
        var w = TestSupport.Numerics.RandomFloats(new Random(12), 512);
        using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [4, 128], Quant4Type.FP4, 128, doubleQuant: true, dtypeName: "bfloat16");
        using var r = q.QuantizeLike(TestCompute.Cpu, w);
        Assert.Equal(q.PackedSpan.ToArray(), r.PackedSpan.ToArray());
        Assert.Equal(q.BlockScales(), r.BlockScales());
        Assert.Equal("bfloat16", r.DTypeName);
        Assert.True(r.DoubleQuant);
    }

    [Fact]
    public void Denormals_follow_the_same_rule()
    {
        // A block whose absmax is a normal number holding denormal elements: they scale to ~0 → code of 0.
        // A block made only of denormals (absmax < 1e-38): scaled by the 1e-38 floor, as bitsandbytes' default backend.
        var w = new float[64];
        w[0] = 0.5f; w[1] = 1e-40f; w[2] = -3e-42f;
        for (int i = 32; i < 64; i++) w[i] = (i - 48) * 1e-40f;
        foreach (var type in new[] { Quant4Type.NF4, Quant4Type.FP4 })
        {
            using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [64], type, 32);
            var (codes, absmax) = Quant4ReferenceImpl.Quantize(w, 32, type);
            Assert.Equal(absmax, q.Absmax);
            Assert.Equal(MathF.Abs(w[32]), q.Absmax![1]);
            Assert.True(q.Absmax[1] < 1e-38f && q.Absmax[1] > 0);
            Assert.Equal(codes, Codes(q));
            var d = new float[64];
            q.Dequantize(TestCompute.Cpu, d);
            Assert.Equal(Quant4ReferenceImpl.Dequantize(codes, absmax, 32, type), d);
        }
    }

    [Theory]
    [InlineData(Quant4Type.NF4, 32)]
    [InlineData(Quant4Type.NF4, 64)]
    [InlineData(Quant4Type.NF4, 256)]
    [InlineData(Quant4Type.FP4, 64)]
    [InlineData(Quant4Type.FP4, 4096)]
    public void Property_codes_match_reference_and_error_is_within_half_gap(Quant4Type type, int bs)
    {
        var rng = new Random(bs + (int)type);
        int n = 3 * bs + 17;
        var w = new float[n];
        for (int i = 0; i < n; i++)
        {
            // mixed scales across blocks, Gaussian-ish values
            double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            w[i] = (float)(g * Math.Pow(10, -(i / bs) - 1));
        }
        using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [n], type, bs);
        var (codes, absmax) = Quant4ReferenceImpl.Quantize(w, bs, type);
        Assert.Equal(codes, Codes(q));
        Assert.Equal(absmax, q.Absmax);
        var d = new float[n];
        q.Dequantize(TestCompute.Cpu, d);
        float halfGap = Quant4Tables.MaxHalfGap(type);
        for (int i = 0; i < n; i++)
        {
            float am = absmax[i / bs];
            double bound = am * halfGap * (1 + 1e-6) + 1e-45;
            Assert.True(Math.Abs(w[i] - d[i]) <= bound, $"i={i}: |{w[i]} − {d[i]}| > {bound}");
        }
    }

    [Fact]
    public void Avx2_and_scalar_paths_agree_bit_for_bit()
    {
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) return;
        var rng = new Random(5);
        var w = TestSupport.Numerics.RandomFloats(rng, 5000, 2f);
        using var scalar = TestCompute.With(new ComputeOptions { VectorKernels = false });
        using var vector = TestCompute.With(new ComputeOptions { VectorKernels = true });
        {
        foreach (var type in new[] { Quant4Type.NF4, Quant4Type.FP4 })
        {
            using var qs = Quantized4Bit.Quantize(scalar, w, [50, 100], type, 64);
            var ds = new float[5000];
            qs.Dequantize(scalar, ds);
            var partS = new float[333];
            qs.DequantizeRange(scalar, 1001, partS);
            using var qv = Quantized4Bit.Quantize(vector, w, [50, 100], type, 64);
            Assert.Equal(qs.PackedSpan.ToArray(), qv.PackedSpan.ToArray());
            var dv = new float[5000];
            qv.Dequantize(vector, dv);
            Assert.Equal(ds, dv);
            var partV = new float[333];
            qv.DequantizeRange(vector, 1001, partV); // odd start
            Assert.Equal(partS, partV);
            Assert.Equal(ds.AsSpan(1001, 333).ToArray(), partV);
        }
        }
    }

    [Fact]
    public void DequantizeRows_handles_blocks_straddling_rows()
    {
        // cols = 50 is not a multiple of the blocksize 32, so blocks wrap across rows and rows start on odd elements
        var rng = new Random(8);
        var w = TestSupport.Numerics.RandomFloats(rng, 7 * 51, 1f);
        using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [7, 51], Quant4Type.NF4, 32, doubleQuant: true);
        var full = new float[7 * 51];
        q.Dequantize(TestCompute.Cpu, full);
        var codes = Codes(q);
        var reference = Quant4ReferenceImpl.Dequantize(codes, q.BlockScales(), 32, Quant4Type.NF4);
        Assert.Equal(reference, full);
        for (int r0 = 0; r0 < 7; r0++)
            for (int rc = 1; r0 + rc <= 7; rc++)
            {
                var part = new float[rc * 51];
                q.DequantizeRows(TestCompute.Cpu, r0, rc, part);
                Assert.Equal(full.AsSpan(r0 * 51, rc * 51).ToArray(), part);
            }
        var seg = new float[20];
        q.DequantizeRowSegment(TestCompute.Cpu, 3, 17, seg);
        Assert.Equal(full.AsSpan(3 * 51 + 17, 20).ToArray(), seg);
        Assert.Throws<ArgumentOutOfRangeException>(() => q.DequantizeRowSegment(TestCompute.Cpu, 3, 40, seg));
    }

    [Fact]
    public void Bf16_tensor_quantizes_like_its_float_values()
    {
        var rng = new Random(9);
        var f = TestSupport.Numerics.RandomFloats(rng, 640, 0.1f);
        using var t = new Tensor(DType.BF16, 10, 64);
        var bits = t.Span<ushort>();
        for (int i = 0; i < f.Length; i++) { bits[i] = Bf16.FromFloat(f[i]); f[i] = Bf16.ToFloat(bits[i]); }
        using var qt = Quantized4Bit.Quantize(TestCompute.Cpu, t, Quant4Type.NF4, 64, doubleQuant: true, name: "w");
        using var qf = Quantized4Bit.Quantize(TestCompute.Cpu, f, [10, 64], Quant4Type.NF4, 64, doubleQuant: true);
        Assert.Equal("bfloat16", qt.DTypeName);
        Assert.Equal(qf.PackedSpan.ToArray(), qt.PackedSpan.ToArray());
        Assert.Equal(qf.QuantizedAbsmax, qt.QuantizedAbsmax);
    }

    [Fact]
    public void Bits_per_parameter_are_4_5_and_4_127_for_blocksize_64()
    {
        var w = TestSupport.Numerics.RandomFloats(new Random(4), 256 * 4096);
        using var plain = Quantized4Bit.Quantize(TestCompute.Cpu, w, [256, 4096], Quant4Type.NF4, 64);
        using var dq = Quantized4Bit.Quantize(TestCompute.Cpu, w, [256, 4096], Quant4Type.NF4, 64, doubleQuant: true);
        Assert.Equal(4.5, plain.BitsPerParameter);
        Assert.Equal(4.126953125, dq.BitsPerParameter);
    }
}
