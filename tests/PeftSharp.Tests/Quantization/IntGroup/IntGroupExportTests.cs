using PeftSharp.Export;
using PeftSharp.IO.Gguf;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Planning;
using PeftSharp.Tests.Gguf;
using PeftSharp.Tests.QLoRA;
using PeftSharp.Tests.TestSupport;
using Xunit.Abstractions;

namespace PeftSharp.Tests.Quantization.IntGroup;

/// <summary>GGUF export of GPTQ/AWQ bases (dequantized, checked by llama.cpp) and the calculator's memory for them.</summary>
public class IntGroupExportTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("gptq", false)]
    [InlineData("awq", true)]
    public void PackedBase_ExportsDequantizedToGguf_AndLlamaCppAgrees(string method, bool mergeAdapter)
    {
        var c = GgufTestModels.Config("llama", 2048);
        var cfg = method == "awq" ? IntGroupFixtures.Awq(32) : IntGroupFixtures.Gptq(4, 32, descAct: true);
        using var fx = IntGroupFixtures.Build(c, cfg, seed: 7);
        var dir = fx.WriteFolder(GgufTestModels.DefaultModel);
        try
        {
            var gguf = Path.Combine(dir, "model.gguf");
            using var model = CausalLM.Load(dir);
            using var pm = GgufLlamaCppAdapterTests.WithAdapter(model, new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear" });
            if (!mergeAdapter) pm.SetActive(null);
            var report = GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgmlType.F32, mergeAdapter ? "default" : null);
            Assert.Contains(report.Notes, n => n.Contains($"{method.ToUpperInvariant()} projections") && n.Contains("dequantized to F32"));
            var ids = GgufLlamaCppAdapterTests.Ids(c.VocabSize);
            var ours = GgufLlamaCppAdapterTests.Rows(Passes.Logits(pm, ids), ids.Length, c.VocabSize);
            double err = GgufTestModels.RelativeError(LlamaCpp.Logits(gguf, ids), ours);
            output.WriteLine($"{method} base{(mergeAdapter ? " + merged LoRA" : "")} → F32 GGUF, llama.cpp vs PeftSharp: {err:E2}");
            Assert.True(err < 1e-4, $"{method}: {err:E2}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MemoryEstimate_CountsThePackedProjectionsAsLoaded()
    {
        var c = QLoraTestModels.Config();
        var cfg = IntGroupFixtures.Gptq(4, 16, descAct: true);
        using var fx = IntGroupFixtures.Build(c, cfg);
        using var m = fx.Model();
        // the estimator's per-projection bytes are what the loaded weights hold
        foreach (var p in m.PackedProjections()) Assert.Equal(p.StorageBytes, cfg.MemoryBytes(p.OutFeatures, p.InFeatures));
        var dense = MemoryEstimator.Estimate(c, "lora", 2, 16, 4, "all-linear", false, "adamw");
        var packed = MemoryEstimator.Estimate(c, "lora", 2, 16, 4, "all-linear", false, "adamw", cfg);
        long packedBytes = m.PackedProjections().Sum(p => p.StorageBytes);
        long denseBytes = m.PackedProjections().Sum(p => p.Weight.ElementCount) * MemoryEstimator.StorageBytes(c);
        Assert.Equal(dense.WeightsBytes - denseBytes + packedBytes, packed.WeightsBytes);
        Assert.Equal(dense.TrainableParameters, packed.TrainableParameters);
        Assert.Throws<PeftException>(() => MemoryEstimator.Estimate(c, "full", 2, 16, 4, "all-linear", false, "adamw", cfg));

        var report = new CalcReport(c, "packed/config.json", new CalcRequest(), null, cfg);
        Assert.Equal(["lora", "dora"], report.Memory.Select(e => e.Method).Distinct());
        var text = report.ToText();
        Assert.Contains("base: GPTQ 4-bit, group 16, desc_act, asym", text);
        Assert.Contains("bits/parameter in the checkpoint", text);
        Assert.Contains("\"packed_base\"", report.ToJson());
    }
}
