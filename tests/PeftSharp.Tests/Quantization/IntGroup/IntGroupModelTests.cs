using System.Text.Json.Nodes;
using PeftSharp.Inference;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Tensors;
using PeftSharp.Tests.QLoRA;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Quantization.IntGroup;

/// <summary>Whole models over GPTQ/AWQ bases, against dense models over the float64 reference dequantization.</summary>
public class IntGroupModelTests
{
    static double[] D(float[] x) => x.Select(v => (double)v).ToArray();
    static readonly int[] Ids = [1, 5, 9, 33, 2, 17, 40, 8];

    static void RandomizeAdapters(PeftModel pm, int seed)
    {
        var rng = new Random(seed);
        foreach (var p in pm.TrainableParameters())
        {
            var v = p.Value.Floats;
            for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * 0.2f;
        }
    }

    [Theory]
    [InlineData("gptq", true)]
    [InlineData("gptq", false)]
    [InlineData("awq", false)]
    public void LoadedFolder_EqualsDenseModelOverTheReference_AndReportsTheScheme(string method, bool descAct)
    {
        var cfg = method == "awq" ? IntGroupFixtures.Awq(32) : IntGroupFixtures.Gptq(4, 32, descAct);
        using var fx = IntGroupFixtures.Build(QLoraTestModels.Config(), cfg);
        var dir = fx.WriteFolder();
        var owned = new List<Tensor>();
        try
        {
            using var m = CausalLM.Load(dir);
            using var dense = fx.DenseOverReference(owned);
            Numerics.AssertClose(Passes.Logits(m, Ids), D(Passes.Logits(dense, Ids)), 1e-5, "logits");
            var g = m.GroupQuantization!;
            Assert.Null(m.Quantization);
            Assert.Equal(method, g.Method);
            Assert.Equal(32, g.GroupSize);
            Assert.Equal(4, g.Bits);
            Assert.InRange(g.BitsPerParameter, 4.5, 6.5);   // codes + fp16 scales + zeros (+ g_idx) per 32 weights of these tiny rows
            Assert.Contains("bits/parameter", g.ToString());
            Assert.Contains("group 32", g.ToString());
            // inspect: the packed projections by scheme, at their checkpoint bytes
            var report = PeftSharp.Inspection.ModelReport.Of(m);
            var q = report.Groups.Single(x => x.Kind == "q_proj.weight");
            Assert.Equal($"{method.ToUpperInvariant()}4-g32{(descAct ? "+act" : "")}", q.DTypes);
            long fileBytes = new[] { "qweight", "qzeros", "scales", "g_idx" }
                .Select(f => $"model.layers.0.self_attn.q_proj.{f}").Where(fx.Checkpoint.ContainsKey).Sum(n => fx.Checkpoint[n].ByteLength);
            Assert.Equal(fx.Config.NumLayers * fileBytes, q.Bytes);
            Assert.Equal(m.BaseParameterCount, report.TotalParameters);
            Assert.Throws<PeftException>(() => m.MakeFullyTrainable());
        }
        finally { Directory.Delete(dir, true); foreach (var t in owned) t.Dispose(); }
    }

    [Theory]
    [InlineData("gptq", false)]
    [InlineData("gptq", true)]
    [InlineData("awq", false)]
    [InlineData("awq", true)]
    public void LoraAndDora_Gradients_EqualTheDenseReferenceModels(string method, bool dora)
    {
        var cfg = method == "awq" ? IntGroupFixtures.Awq(32) : IntGroupFixtures.Gptq(4, 16, descAct: true);
        using var fx = IntGroupFixtures.Build(QLoraTestModels.Config(), cfg);
        var owned = new List<Tensor>();
        var lora = new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", UseDora = dora };
        using var packed = new PeftModel(fx.Model(), TestCompute.Cpu);
        using var dense = new PeftModel(fx.DenseOverReference(owned), TestCompute.Cpu);
        packed.AddAdapter("default", lora, 9);
        dense.AddAdapter("default", lora, 9);
        RandomizeAdapters(packed, 4);
        RandomizeAdapters(dense, 4);
        const int B = 2, T = 8;
        var ids = TinyModels.RandomIds(new Random(8), B * T, fx.Config.VocabSize);
        var pos = Enumerable.Range(0, B * T).Select(i => i % T).ToArray();
        var tgt = ids.Skip(1).Append(-100).ToArray();
        double lp, ld;
        using (var pass = Passes.Model(packed, B, T, recompute: false)) lp = pass.ForwardBackward(ids, pos, [], tgt, 1f).LossSum;
        using (var pass = Passes.Model(dense, B, T, recompute: true)) ld = pass.ForwardBackward(ids, pos, [], tgt, 1f).LossSum;
        Assert.Equal(ld, lp, 4);
        var gp = packed.TrainableParameters().ToList();
        var gd = dense.TrainableParameters().ToDictionary(p => p.Name);
        Assert.Equal(gd.Count, gp.Count);
        foreach (var p in gp)
            Numerics.AssertClose(p.Grad.Floats, D(gd[p.Name].Grad.Floats.ToArray()), 1e-4, p.Name + " grad");
        Assert.Contains(gp, p => p.Grad.Floats.ToArray().Any(v => v != 0));
        foreach (var t in owned) t.Dispose();
    }

    [Fact]
    public void ScoringAndGreedyGeneration_MatchTheDenseReferenceModel()
    {
        using var fx = IntGroupFixtures.Build(QLoraTestModels.Config(), IntGroupFixtures.Gptq(8, 32, descAct: true));
        var owned = new List<Tensor>();
        using var m = fx.Model();
        using var dense = fx.DenseOverReference(owned);
        var a = Passes.Score(m, Ids);
        var b = Passes.Score(dense, Ids);
        Assert.Equal(b.Total, a.Total, 4);
        var greedy = new SamplingOptions(Temperature: 0f);
        Assert.Equal(Passes.Generate(dense, [1, 5, 9], 12, greedy, []).ToArray(), Passes.Generate(m, [1, 5, 9], 12, greedy, []).ToArray());
        foreach (var t in owned) t.Dispose();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Merge_IntoBf16_EqualsTheUnmergedAdapter_AndWritesADenseCheckpoint(bool dora)
    {
        using var fx = IntGroupFixtures.Build(QLoraTestModels.Config(), IntGroupFixtures.Gptq(4, 16, descAct: true));
        var outDir = TinyRun.Temp("merged");
        try
        {
            using var pm = new PeftModel(fx.Model(), TestCompute.Cpu);
            pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", UseDora = dora }, 2);
            RandomizeAdapters(pm, 3);
            var before = Passes.Logits(pm, Ids);
            var r = AdapterMerge.MergeActive(pm, Ids);
            Assert.False(r.IntoQuantizedBase);
            Assert.True(r.MaxRelativeLogitDifference < 1e-5, $"merge into the dequantized base: {r.MaxRelativeLogitDifference:E2}");
            Assert.All(pm.Model.PackedProjections(), p => Assert.True(p.IsDense));
            var merged = pm.Model.PackedProjections().First();
            var mergedRows = new float[merged.OutFeatures * merged.InFeatures];
            merged.ReadRows(TestCompute.Cpu, 0, merged.OutFeatures, mergedRows);

            HfCheckpoint.Write(outDir, pm.Model, null, DType.BF16, compute: TestCompute.Cpu);
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!.AsObject();
            Assert.False(json.ContainsKey("quantization_config"));
            using var back = CausalLM.Load(outDir);
            Assert.Null(back.GroupQuantization);
            var w = CausalLM.BaseLinear(back.Layers[0].Projections.First()).Weight;
            Assert.Equal(DType.BF16, w.DType);
            var bf = new float[mergedRows.Length];
            unsafe { DTypeConvert.ToFloat(w.Data, DType.BF16, bf); }
            var rounded = new float[mergedRows.Length];
            using (var tmp = new Tensor(DType.BF16, merged.OutFeatures, merged.InFeatures))
            {
                unsafe
                {
                    DTypeConvert.FromFloat(mergedRows, DType.BF16, tmp.Data);
                    DTypeConvert.ToFloat(tmp.Data, DType.BF16, rounded);
                }
            }
            Assert.Equal(rounded, bf);   // one rounding: dequant(W) + ΔW in float32 → BF16
            Numerics.AssertClose(Passes.Logits(back, Ids), D(before), 2e-2, "BF16 merged checkpoint vs adapter over the GPTQ base");
            pm.Unmerge("default");
            Numerics.AssertClose(Passes.Logits(pm, Ids), D(before), 1e-5, "unmerged");
        }
        finally { Directory.Delete(outDir, true); }
    }

    [Fact]
    public void TrainedAdapter_LoadsOntoTheDenseReferenceBase()
    {
        using var fx = IntGroupFixtures.Build(QLoraTestModels.Config(), IntGroupFixtures.Awq(32));
        var adapterDir = TinyRun.Temp("awq-adapter");
        var owned = new List<Tensor>();
        try
        {
            using (var pm = new PeftModel(fx.Model(), TestCompute.Cpu))
            {
                pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear" }, 2);
                RandomizeAdapters(pm, 6);
                pm.Save(adapterDir);
            }
            using var dense = new PeftModel(fx.DenseOverReference(owned), TestCompute.Cpu);
            var report = dense.LoadAdapter(adapterDir);
            Assert.Empty(report.Missing);
            Assert.Empty(report.Unexpected);
            using var again = new PeftModel(fx.Model(), TestCompute.Cpu);
            again.LoadAdapter(adapterDir);
            Numerics.AssertClose(Passes.Logits(again, Ids), D(Passes.Logits(dense, Ids)), 1e-5, "adapter over AWQ vs over its dequantized base");
        }
        finally { Directory.Delete(adapterDir, true); foreach (var t in owned) t.Dispose(); }
    }
}
