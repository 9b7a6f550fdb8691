using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Quantization;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.QLoRA;

public class QLoraModelTests
{
    static double[] D(float[] x) => x.Select(v => (double)v).ToArray();
    static readonly int[] Ids = [1, 5, 9, 33, 2, 17, 40, 8];

    [Fact]
    public void LoadTimeQuantization_EqualsQuantizingEachTensor_AndKeepsEmbeddingsNormsHead()
    {
        var c = QLoraTestModels.Config() with { TorchDtype = "bfloat16" };
        var w = TinyModels.Weights(c, 3, DType.BF16);
        var dir = TinyModels.WriteFolder(c, w);
        try
        {
            using var m = CausalLM.Load(dir, new QuantizeOptions(Quant4Type.FP4, false, 128), TestCompute.Cpu);
            Assert.NotNull(m.Quantization);
            Assert.Equal(c.NumLayers * 7, m.Quantization!.QuantizedModules);
            Assert.False(m.Quantization.PreQuantized);
            Assert.Contains("embed_tokens", m.Quantization.UnquantizedModules);
            Assert.Contains("lm_head", m.Quantization.UnquantizedModules);
            Assert.Equal(DType.BF16, m.Embed.DType);
            Assert.Equal(DType.BF16, m.LmHead.DType);
            foreach (var q in m.QuantizedProjections())
            {
                using var expected = Quantized4Bit.Quantize(TestCompute.Cpu, w[q.Name + ".weight"], Quant4Type.FP4, 128, false, q.Name);
                Assert.Equal(expected.PackedSpan.ToArray(), q.Weight.PackedSpan.ToArray());
                Assert.Equal(expected.Absmax, q.Weight.Absmax);
                Assert.Equal("bfloat16", q.Weight.DTypeName);
            }
            // frozen bytes count the 4-bit weights at their packed size
            long dense = m.NamedWeights().Sum(x => x.Tensor.ByteLength);
            long q4 = m.QuantizedProjections().Sum(q => q.StorageBytes);
            Assert.Equal(dense + q4, m.BaseBytes());
            Assert.True(q4 < m.QuantizedProjections().Sum(q => q.Weight.ElementCount) * 2 / 3);
        }
        finally { Directory.Delete(dir, true); foreach (var t in w.Values) t.Dispose(); }
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    public void QuantizedModel_EqualsDenseModelOverDequantizedWeights(string type)
    {
        var c = QLoraTestModels.Config(type);
        var w = TinyModels.Weights(c, 5);
        var owned = new List<Tensor>();
        using var q = QLoraTestModels.Quantized(c, w);
        using var dense = QLoraTestModels.DenseOverDequantized(c, w, q, owned);
        Numerics.AssertClose(Passes.Logits(q, Ids), D(Passes.Logits(dense, Ids)), 1e-5, "logits");
        foreach (var t in owned) t.Dispose();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    [InlineData(false, "phi3")]   // 4-bit fused qkv_proj / gate_up_proj
    [InlineData(false, "gemma2")]
    [InlineData(false, "gemma3_text")]   // QDoRA on gemma: GemmaModelTests (magnitude direction, as DoRA's detached norm needs)
    public void QLoraAndQDora_GradientsMatchFiniteDifferences(bool dora, string type = "llama")
    {
        var c = QLoraTestModels.Config(type);
        var w = TinyModels.Weights(c, 7);
        using var pm = new PeftModel(QLoraTestModels.Quantized(c, w), TestCompute.Cpu);
        pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", UseDora = dora }, 9);
        var rng = new Random(4);
        var parameters = pm.TrainableParameters().ToList();
        foreach (var p in parameters.Where(p => p.Name.Contains("lora_B")))
        {
            var v = p.Value.Floats;
            for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() - 0.5) * 0.2f;
        }
        if (dora)
        {
            // QDoRA's magnitude starts at the row norms of the dequantized base weight
            var lin = pm.LoraModules.First();
            var ad = lin.Adapters["default"];
            var norms = new double[lin.OutFeatures];
            ((IFrozenProjection)lin.Base).RowNormsSquared(TestCompute.Cpu, norms);
            var deq = new float[lin.OutFeatures * lin.InFeatures];
            ((QuantizedLinear)lin.Base).Weight.Dequantize(TestCompute.Cpu, deq);
            for (int i = 0; i < 3; i++)
            {
                double s = 0;
                for (int k = 0; k < lin.InFeatures; k++) s += (double)deq[i * lin.InFeatures + k] * deq[i * lin.InFeatures + k];
                Assert.Equal(Math.Sqrt(s), ad.Magnitude!.Value.Floats[i], 4);
            }
        }
        const int B = 1, T = 10;
        var ids = TinyModels.RandomIds(new Random(8), B * T, c.VocabSize);
        var pos = Enumerable.Range(0, T).ToArray();
        var tgt = ids.Skip(1).Append(-100).ToArray();
        using (var pass = Passes.Model(pm, B, T, recompute: false))
            pass.ForwardBackward(ids, pos, [], tgt, 1f);
        var dirs = parameters.Select(p => Numerics.RandomFloats(rng, (int)p.Count)).ToList();
        double analytic = 0;
        for (int i = 0; i < parameters.Count; i++)
        {
            var g = parameters[i].Grad.Floats;
            for (int j = 0; j < g.Length; j++) analytic += g[j] * dirs[i][j];
        }
        double Loss()
        {
            using var pass = Passes.Model(pm, B, T, recompute: false);
            return pass.Loss(ids, pos, [], tgt).LossSum;
        }
        const float eps = 1e-3f;
        void Shift(float s)
        {
            for (int i = 0; i < parameters.Count; i++)
            {
                var v = parameters[i].Value.Floats;
                for (int j = 0; j < v.Length; j++) v[j] += s * dirs[i][j];
            }
        }
        Shift(eps); double plus = Loss();
        Shift(-2 * eps); double minus = Loss();
        Shift(eps);
        double numeric = (plus - minus) / (2 * eps);
        Assert.True(Math.Abs(analytic) > 1e-3, $"degenerate check: analytic directional derivative {analytic}");
        double rel = Math.Abs(analytic - numeric) / Math.Abs(numeric);
        Assert.True(rel < 2e-2, $"dora={dora}: analytic {analytic} vs numeric {numeric} (rel {rel:E2})");
        foreach (var t in w.Values) t.Dispose();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Merge_Into4Bit_ReportsRoundingError_AndIntoDenseBase_EqualsUnmerged(bool dora)
    {
        var c = QLoraTestModels.Config();
        var w = TinyModels.Weights(c, 11);
        var adapterDir = Path.Combine(Path.GetTempPath(), "peftsharp-qlora-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            // the first rounding: dense vs 4-bit base, same relative measure
            double firstRounding;
            using (var q0 = QLoraTestModels.Quantized(c, w))
            using (var d0 = TinyModels.Build(c, w))
            {
                var a = Passes.Logits(d0, Ids);
                var b = Passes.Logits(q0, Ids);
                firstRounding = a.Zip(b, (x, y) => Math.Abs(x - y)).Max() / a.Max(x => Math.Abs(x));
            }
            using (var pm = new PeftModel(QLoraTestModels.Quantized(c, w), TestCompute.Cpu))
            {
                pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", UseDora = dora }, 2);
                var rng = new Random(3);
                foreach (var p in pm.TrainableParameters())
                {
                    var v = p.Value.Floats;
                    for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * 0.2f;
                }
                pm.Save(adapterDir);
                var r = AdapterMerge.MergeActive(pm, Ids);
                Assert.True(r.IntoQuantizedBase);
                Assert.True(r.MaxRequantizationError > 0, "re-quantization must round");
                Assert.True(r.MaxRelativeLogitDifference > 1e-6, $"4-bit merge error {r.MaxRelativeLogitDifference}");
                // the second rounding is of the same order as the first one
                Assert.True(r.MaxRelativeLogitDifference < 3 * firstRounding, $"4-bit merge error {r.MaxRelativeLogitDifference} vs quantization error {firstRounding}");
            }
            // the adapter trained over the 4-bit base loads onto the dense base (same PEFT format) and merges exactly
            using var dense = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu);
            var report = dense.LoadAdapter(adapterDir);
            Assert.Empty(report.Missing);
            Assert.Empty(report.Unexpected);
            var d = AdapterMerge.MergeActive(dense, Ids);
            Assert.False(d.IntoQuantizedBase);
            Assert.True(d.MaxRelativeLogitDifference < 1e-5, $"dense merge error {d.MaxRelativeLogitDifference}");
        }
        finally
        {
            if (Directory.Exists(adapterDir)) Directory.Delete(adapterDir, true);
            foreach (var t in w.Values) t.Dispose();
        }
    }
}
