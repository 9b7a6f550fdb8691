using System.Text.Json.Nodes;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Quantization;
using PeftSharp.Tests.IO;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Peft;

/// <summary>The committed `peft bench loftq` figures (tests/fixtures/bench/loftq.jsonl) are what the code computes.</summary>
public class LoftQBenchFixtureTests
{
    [Fact]
    public void Committed_demo_model_figures_are_recomputed_exactly()
    {
        var lines = File.ReadAllLines(IoTestPaths.Fixture("bench", "loftq.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        var demo = lines.Single(o => (string?)o["model"] == "default-model");
        int iters = (int)demo["iters"]!, r = (int)demo["r"]!;
        bool dq = ((string)demo["quantization"]!).Contains("double quant");
        var modules = demo["modules"]!.AsArray();
        Assert.Equal(28, modules.Count);
        var format = new QuantizeOptions(Quant4Type.NF4, dq, 64);
        using var m = CausalLM.Load(Path.Combine(IoTestPaths.RepoRoot, "assets", "default-model"), null, TestCompute.Cpu);
        var projections = m.Layers.SelectMany(l => l.Projections).Select(CausalLM.BaseProjection).OfType<Linear>().ToDictionary(p => p.Name);
        // Two modules of each shape family, recomputed from the weights: the file holds the code's output, not a copy.
        foreach (var entry in new[] { modules[0]!, modules[4]!, modules[27]! })
        {
            var lin = projections[(string)entry["module"]!];
            var w = new float[lin.OutFeatures * lin.InFeatures];
            lin.ReadRows(TestCompute.Cpu, 0, lin.OutFeatures, w);
            var run = LoftQ.Run(TestCompute.Cpu, w, lin.OutFeatures, lin.InFeatures, r, 2f, iters, format, lin.Name);
            Assert.Equal((double)entry["plain_nf4"]!, run.PlainError, 5);
            var steps = entry["loftq"]!.AsArray().Select(x => (double)x!).ToArray();
            Assert.Equal(iters, steps.Length);
            for (int k = 0; k < iters; k++) Assert.Equal(steps[k], run.Errors[k], 5);
            run.Q.Dispose();
        }
        // Every line: LoftQ's total after step 1 is below plain NF4's, as each module's is.
        foreach (var line in lines)
        {
            var total = line["total"]!;
            Assert.True((double)total["loftq"]![0]! < (double)total["plain_nf4"]!, $"{line["model"]}: total");
            Assert.All(line["modules"]!.AsArray(), mod => Assert.True((double)mod!["loftq"]![0]! < (double)mod["plain_nf4"]!));
        }
    }
}
