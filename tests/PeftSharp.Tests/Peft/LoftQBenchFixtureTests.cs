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

    /// <summary>
    /// The Krylov SVD's runs on random TinyLlama-1.1B-shaped weights against the exact SVD's earlier run of the same
    /// layer (which took 56 minutes, so it is not recomputed here): every figure equal to the 6 digits written, and the
    /// whole 22-layer model's layer 0 equal to them too where its weights are the same draws (o_proj and down_proj are
    /// drawn with std 0.02/√(2·layers), so they differ between the 1- and 22-layer models).
    /// </summary>
    [Fact]
    public void Krylov_runs_on_the_random_TinyLlama_layer_give_the_exact_runs_figures()
    {
        var lines = File.ReadAllLines(IoTestPaths.Fixture("bench", "loftq.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        var oneLayer = lines.Where(o => ((string)o["model"]!).StartsWith("random tinyllama-1.1b (1 layer,")).ToList();
        var exact = oneLayer.Single(o => o["svd"] is null);    // written before the SVD was named: TruncatedSvd.Exact
        var krylov = oneLayer.Single(o => ((string?)o["svd"])?.StartsWith("krylov") == true);
        var whole = lines.Single(o => ((string)o["model"]!).StartsWith("random tinyllama-1.1b (22 layers,"));
        Assert.StartsWith("krylov", (string)whole["svd"]!);
        Assert.Equal(22 * 7, whole["modules"]!.AsArray().Count);
        static double[] Figures(JsonNode m) => [(double)m["plain_nf4"]!, .. m["loftq"]!.AsArray().Select(x => (double)x!)];
        var byName = whole["modules"]!.AsArray().ToDictionary(m => (string)m!["module"]!, m => m!);
        foreach (var (e, k) in exact["modules"]!.AsArray().Zip(krylov["modules"]!.AsArray()))
        {
            string name = (string)e!["module"]!;
            Assert.Equal(name, (string)k!["module"]!);
            Assert.Equal(Figures(e), Figures(k));
            if (!name.EndsWith("o_proj") && !name.EndsWith("down_proj")) Assert.Equal(Figures(e), Figures(byName[name]));
        }
        Assert.Equal(Figures(exact["total"]!), Figures(krylov["total"]!));
        // Every module of the whole model gains from each of the first steps, and step 5 is below step 1.
        Assert.All(whole["modules"]!.AsArray(), m => Assert.True(Figures(m!)[5] < Figures(m!)[1] && Figures(m!)[1] < Figures(m!)[0], (string)m!["module"]!));
    }
}
