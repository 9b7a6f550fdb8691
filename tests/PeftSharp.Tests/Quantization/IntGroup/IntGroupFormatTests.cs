using PeftSharp.Quantization.IntGroup;
using PeftSharp.Tensors;
using PeftSharp.Tests.QLoRA;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Quantization.IntGroup;

/// <summary>GPTQ/AWQ packing: hand-packed words decode as the formats define; RTN checkpoints round-trip within one
/// quantization step; the engine's dequantization equals the independent float64 reference bit for bit.</summary>
public class IntGroupFormatTests
{
    static Tensor I32(int rows, int cols, Func<int, int, uint> value)
    {
        var t = new Tensor(DType.I32, rows, cols);
        var s = t.Span<uint>();
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) s[r * cols + c] = value(r, c);
        return t;
    }

    static Tensor Halves(int rows, int cols, float v)
    {
        var t = new Tensor(DType.F16, rows, cols);
        t.Span<Half>().Fill((Half)v);
        return t;
    }

    [Fact]
    public void GptqV1_HandPackedWords_DecodeAlongTheInput_WithZeroPlusOne()
    {
        // 8 inputs × 8 outputs, one group: every qweight word 0x76543210 holds inputs 0..7 = codes 0..7;
        // qzeros 0x76543210 holds the stored zeros of outputs 0..7 = o, so the kernel's zero is o + 1
        var t = new Dictionary<string, Tensor>
        {
            ["m.qweight"] = I32(1, 8, (_, _) => 0x76543210),
            ["m.qzeros"] = I32(1, 1, (_, _) => 0x76543210),
            ["m.scales"] = Halves(1, 8, 0.5f),
        };
        var w = IntGroupTensors.Read("m", n => t.GetValueOrDefault(n), "hand", IntGroupFixtures.Gptq(4, -1), 8, 8);
        var dst = new float[64];
        w.DequantizeRows(TestCompute.Cpu, 0, 8, dst);
        for (int o = 0; o < 8; o++)
            for (int i = 0; i < 8; i++) Assert.Equal(0.5f * (i - (o + 1)), dst[o * 8 + i]);
        foreach (var x in t.Values) x.Dispose();
    }

    [Fact]
    public void GptqV2_StoresZerosAsTheyAre_And8BitPacksFourPerWord()
    {
        // 8-bit: a word holds 4 inputs; 0x04030201 → codes 1, 2, 3, 4; zeros word 0x0A0A0A0A → 10 for four outputs
        var t = new Dictionary<string, Tensor>
        {
            ["m.qweight"] = I32(1, 4, (_, _) => 0x04030201),
            ["m.qzeros"] = I32(1, 1, (_, _) => 0x0A0A0A0A),
            ["m.scales"] = Halves(1, 4, 2f),
        };
        var w = IntGroupTensors.Read("m", n => t.GetValueOrDefault(n), "hand", IntGroupFixtures.Gptq(8, -1, v2: true), 4, 4);
        var dst = new float[16];
        w.DequantizeRows(TestCompute.Cpu, 0, 4, dst);
        for (int o = 0; o < 4; o++)
            for (int i = 0; i < 4; i++) Assert.Equal(2f * (i + 1 - 10), dst[o * 4 + i]);
        foreach (var x in t.Values) x.Dispose();
    }

    [Fact]
    public void AwqGemm_HandPackedWord_UsesTheInterleavedOrder()
    {
        // nibble j of 0x76543210 holds code j for column ORDER[j] = [0,2,4,6,1,3,5,7][j]: columns 0..7 read 0,4,1,5,2,6,3,7
        var t = new Dictionary<string, Tensor>
        {
            ["m.qweight"] = I32(8, 1, (_, _) => 0x76543210),
            ["m.qzeros"] = I32(1, 1, (_, _) => 0),
            ["m.scales"] = Halves(1, 8, 1f),
        };
        var w = IntGroupTensors.Read("m", n => t.GetValueOrDefault(n), "hand", IntGroupFixtures.Awq(8), 8, 8);
        int[] expected = [0, 4, 1, 5, 2, 6, 3, 7];
        for (int o = 0; o < 8; o++)
            for (int i = 0; i < 8; i++) Assert.Equal(expected[o], w.Code(o, i));
        foreach (var x in t.Values) x.Dispose();
    }

    public static IEnumerable<object[]> Schemes() =>
    [
        ["gptq", 4, 16, false, false, false],
        ["gptq", 4, 16, true, false, false],    // desc_act: permuted g_idx
        ["gptq", 4, 40, true, true, false],     // groups that do not tile the input (ceil), sym
        ["gptq", 4, -1, false, true, true],     // one group per row, gptq_v2
        ["gptq", 8, 32, true, false, false],
        ["gptq", 8, 16, false, false, true],
        ["awq", 4, 32, false, false, false],
        ["awq", 4, 16, false, false, false],
    ];

    static IntGroupConfig Scheme(string method, int bits, int group, bool descAct, bool sym, bool v2) =>
        method == "awq" ? IntGroupFixtures.Awq(group) : IntGroupFixtures.Gptq(bits, group, descAct, sym, v2);

    [Theory]
    [MemberData(nameof(Schemes))]
    public void Engine_EqualsFloat64Reference_Exactly_AndRoundTripsWithinOneStep(string method, int bits, int group, bool descAct, bool sym, bool v2)
    {
        var cfg = Scheme(method, bits, group, descAct, sym, v2);
        using var fx = IntGroupFixtures.Build(QLoraTestModels.Config(), cfg);
        using var m = fx.Model();
        Assert.NotNull(m.GroupQuantization);
        Assert.Equal(fx.Config.NumLayers * 7, m.GroupQuantization!.QuantizedModules);
        Assert.Equal(descAct ? fx.Config.NumLayers * 7 : 0, m.GroupQuantization.PermutedModules);
        foreach (var p in m.PackedProjections())
        {
            var reference = fx.Reference(p.Name);
            var engine = new float[reference.Length];
            p.ReadRows(TestCompute.Cpu, 0, p.OutFeatures, engine);
            for (int k = 0; k < engine.Length; k++)
                Assert.True(engine[k] == (float)reference[k], $"{p.Name}[{k / p.InFeatures}, {k % p.InFeatures}]: engine {engine[k]} vs reference {reference[k]}");
            // the quantized weights approximate the known ones within the group's step (scale)
            var known = fx.Dense[p.Name + ".weight"].Floats;
            var w = p.Weight;
            double worst = 0;
            for (int o = 0; o < p.OutFeatures; o++)
                for (int i = 0; i < p.InFeatures; i++)
                {
                    double step = w.GroupParams(o, w.GroupOf(i)).Scale;
                    double err = Math.Abs(known[o * p.InFeatures + i] - reference[o * p.InFeatures + i]);
                    Assert.True(err <= step * 1.0001, $"{p.Name}[{o}, {i}]: |w − deq| {err} > step {step}");
                    worst = Math.Max(worst, err / step);
                }
            Assert.True(worst > 0.05, $"{p.Name}: a round trip that never rounds is suspicious (worst {worst} steps)");
        }
    }

    [Fact]
    public void DescAct_GIdx_IsThePermutedGrouping_AndChangesTheResult()
    {
        using var plain = IntGroupFixtures.Build(QLoraTestModels.Config(), IntGroupFixtures.Gptq(4, 16));
        using var act = IntGroupFixtures.Build(QLoraTestModels.Config(), IntGroupFixtures.Gptq(4, 16, descAct: true));
        const string q = "model.layers.0.self_attn.q_proj";
        var g = act.Checkpoint[q + ".g_idx"].Span<int>().ToArray();
        Assert.NotEqual(Enumerable.Range(0, 64).Select(i => i / 16), g);
        Assert.All(Enumerable.Range(0, 4), grp => Assert.Equal(16, g.Count(x => x == grp)));   // a permutation of the groups
        Assert.NotEqual(plain.Reference(q), act.Reference(q));
    }

    [Fact]
    public void ChunkedProducts_DoNotDependOnTheChunkSize()
    {
        using var fx = IntGroupFixtures.Build(QLoraTestModels.Config(), IntGroupFixtures.Gptq(4, 16, descAct: true));
        using var m = fx.Model();
        var p = m.PackedProjections().First(x => x.Name.EndsWith("gate_proj"));
        var x = Numerics.RandomFloats(new Random(3), 5 * p.InFeatures);
        float[] Run(int chunk)
        {
            using var ctx = TestCompute.With(new PeftSharp.Compute.ComputeOptions { Quant4ChunkRows = chunk, Threads = 2 });
            var y = new float[5 * p.OutFeatures];
            unsafe { fixed (float* xp = x, yp = y) p.ForwardNoBias(ctx, xp, yp, 5); }
            return y;
        }
        var full = Run(256);
        Assert.Equal(full, Run(7));
        // and equal the float64 product with the reference weight
        var r = fx.Reference(p.Name);
        var expected = new double[full.Length];
        for (int n = 0; n < 5; n++)
            for (int o = 0; o < p.OutFeatures; o++)
            {
                double s = 0;
                for (int i = 0; i < p.InFeatures; i++) s += x[n * p.InFeatures + i] * r[o * p.InFeatures + i];
                expected[n * p.OutFeatures + o] = s;
            }
        Numerics.AssertClose(full, expected, 1e-5, "y = x·dequant(W)ᵀ");
    }
}
