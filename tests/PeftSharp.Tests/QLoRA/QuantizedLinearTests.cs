using PeftSharp.Nn;
using PeftSharp.Quantization;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.QLoRA;

/// <summary>QuantizedLinear against a dense Linear over the same dequantized weight: the chunked products are the same math.</summary>
public unsafe class QuantizedLinearTests
{
    /// <summary>The pass the layer calls of this class run in (routing every row to the adapter under test).</summary>
    static readonly PassContext Pass = new(TestCompute.Cpu, AdapterRouting.All(null)) { Training = true, DropoutSeed = 5, DropoutStep = 2 };

    // Out = 300 spans two chunks of the default 256 rows; In = 96 makes 64-blocks straddle rows.
    const int Out = 300, In = 96, N = 5;

    static (QuantizedLinear q, Linear dense, Tensor deq) Pair(Quant4Type type, bool dq, bool bias, int seed = 1)
    {
        var rng = new Random(seed);
        var w = Numerics.RandomFloats(rng, Out * In, 0.05f);
        var qw = Quantized4Bit.Quantize(TestCompute.Cpu, w, [Out, In], type, 64, dq, "test.weight");
        var deq = new Tensor(DType.F32, Out, In);
        qw.Dequantize(TestCompute.Cpu, deq.Floats);
        Tensor? b = null;
        if (bias) { b = new Tensor(DType.F32, Out); Numerics.RandomFloats(rng, Out, 0.1f).CopyTo(b.Floats); }
        return (new QuantizedLinear("test", qw, b), new Linear("test", deq, b), deq);
    }

    static double[] D(float[] x) => x.Select(v => (double)v).ToArray();

    [Theory]
    [InlineData(Quant4Type.NF4, true, true)]
    [InlineData(Quant4Type.FP4, false, false)]
    public void ForwardAndBackward_MatchDenseLinearOverDequantizedWeight(Quant4Type type, bool dq, bool bias)
    {
        var (q, dense, deq) = Pair(type, dq, bias);
        using var _q = q; using var _d = deq;
        var rng = new Random(2);
        var x = Numerics.RandomFloats(rng, N * In);
        var dy = Numerics.RandomFloats(rng, N * Out);
        float[] y1 = new float[N * Out], y2 = new float[N * Out], dx1 = new float[N * In], dx2 = new float[N * In];
        fixed (float* px = x, pdy = dy, a = y1, b = y2, c = dx1, d = dx2)
        {
            q.Forward(Pass, px, a, N);
            dense.Forward(Pass, px, b, N);
            for (int i = 0; i < dx1.Length; i++) c[i] = d[i] = 0.5f;   // backward accumulates
            q.Backward(Pass, pdy, px, c, N);
            dense.Backward(Pass, pdy, px, d, N);
        }
        Assert.Contains(y1, v => v != 0);
        Numerics.AssertClose(y1, D(y2), 1e-6, "y");
        Numerics.AssertClose(dx1, D(dx2), 1e-6, "dx");
        Assert.Empty(q.Parameters());
    }

    [Fact]
    public void AdapterSeam_MatchesDense()
    {
        var (q, dense, deq) = Pair(Quant4Type.NF4, true, true, 3);
        using var _q = q; using var _d = deq;
        const int r = 4;
        var a = Numerics.RandomFloats(new Random(4), r * In);
        float[] w1 = new float[Out * r], w2 = new float[Out * r];
        fixed (float* pa = a, p1 = w1, p2 = w2)
        {
            q.WeightTimesTransposed(TestCompute.Cpu, pa, r, p1);
            dense.WeightTimesTransposed(TestCompute.Cpu, pa, r, p2);
        }
        Numerics.AssertClose(w1, D(w2), 1e-6, "W·Aᵀ");
        double[] n1 = new double[Out], n2 = new double[Out];
        q.RowNormsSquared(TestCompute.Cpu, n1);
        dense.RowNormsSquared(TestCompute.Cpu, n2);
        Assert.True(Numerics.RelativeError(n1, n2) < 1e-12);
        var rows = new float[3 * In];
        q.ReadRows(TestCompute.Cpu, 255, 3, rows);
        Assert.Equal(deq.Floats.Slice(255 * In, 3 * In).ToArray(), rows);
        Assert.Equal(dense.BiasOrEmpty.ToArray(), q.BiasOrEmpty.ToArray());
    }

    [Fact]
    public void AddToWeight_RequantizesWithSameSettings_AndRecordsRoundingError()
    {
        var (q, _, deq) = Pair(Quant4Type.NF4, true, false, 5);
        using var _q = q; using var _d = deq;
        var delta = Numerics.RandomFloats(new Random(6), Out * In, 0.01f);
        Assert.Equal(0f, q.MergeRoundingError);
        q.AddToWeight(TestCompute.Cpu, delta, 1f);
        var exact = new float[Out * In];
        for (int i = 0; i < exact.Length; i++) exact[i] = deq.Floats[i] + delta[i];
        using var expected = Quantized4Bit.Quantize(TestCompute.Cpu, exact, [Out, In], Quant4Type.NF4, 64, true);
        Assert.Equal(expected.PackedSpan.ToArray(), q.Weight.PackedSpan.ToArray());
        Assert.True(q.Weight.DoubleQuant);
        Assert.Equal(64, q.Weight.BlockSize);
        var back = new float[exact.Length];
        q.Weight.Dequantize(TestCompute.Cpu, back);
        float maxErr = 0;
        for (int i = 0; i < back.Length; i++) maxErr = Math.Max(maxErr, Math.Abs(back[i] - exact[i]));
        Assert.True(maxErr > 0);
        Assert.Equal(maxErr, q.MergeRoundingError);
    }
}
