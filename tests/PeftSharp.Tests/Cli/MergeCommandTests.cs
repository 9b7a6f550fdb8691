using System.Text.Json.Nodes;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Cli;

/// <summary>`peft merge` as a user runs it, on issue #13's two findings: `--dtype f32` of a BF16 base writes float32
/// sums (not BF16-rounded values), and an adapter with modules_to_save on a tied model merges as PEFT's
/// merge_and_unload (the saved lm_head replaces the head only, the output is untied) instead of failing.</summary>
public class MergeCommandTests
{
    [Fact]
    public void MergeF32OfATiedBf16BaseWithModulesToSaveWritesWhatTheAdapterComputes()
    {
        var c = TinyModels.Config(tied: true) with { TorchDtype = "bfloat16" };
        var w = TinyModels.Weights(c, 3, DType.BF16);
        if (w.Remove(WeightNames.LmHead, out var head)) head.Dispose();
        string baseDir = TinyModels.WriteFolder(c, w);
        foreach (var t in w.Values) t.Dispose();

        string adapterDir = TinyRun.Temp("merge-adapter");
        int[] ids = [3, 1, 4, 1, 5, 9, 2, 6];
        float[] expected;
        using (var pm = new PeftModel(CausalLM.Load(baseDir, null, TestCompute.Cpu), TestCompute.Cpu))
        {
            pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", ModulesToSave = ["lm_head"] });
            var rng = new Random(5);
            foreach (var p in pm.TrainableParameters())
            {
                var v = p.Value.Floats;
                for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * 0.2f;
            }
            pm.Save(adapterDir);
            expected = AdapterMerge.Logits(pm.Model, TestCompute.Cpu, pm.Route("default"), ids);
        }

        string outDir = Path.Combine(TinyRun.Temp("merge-out"), "merged");
        var (code, stdout, stderr) = PeftProcess.Run(["merge", baseDir, "--adapter", adapterDir, "--out", outDir, "--dtype", "f32", "--threads", "1"]);
        Assert.True(code == 0, $"peft merge exited {code}:\n{stdout}\n{stderr}");
        Assert.Contains("tie_word_embeddings: false", stderr);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!;
        Assert.False(config["tie_word_embeddings"]!.GetValue<bool>());
        Assert.Equal("float32", config["torch_dtype"]!.GetValue<string>());
        using (var st = SafetensorsFile.Open(Path.Combine(outDir, "model.safetensors")))
        {
            Assert.Equal(DType.F32, st.Entries.Single(e => e.Name == WeightNames.LmHead).DType);
            using var q = st.Get("model.layers.0.self_attn.q_proj.weight");
            Assert.Equal(DType.F32, q.DType);
            var v = q.Floats;
            int low = 0;
            foreach (var x in v) if ((BitConverter.SingleToInt32Bits(x) & 0xFFFF) != 0) low++;
            Assert.True(low > v.Length * 9 / 10, $"{low} of {v.Length} merged values use float32's low 16 bits");
        }
        using var merged = CausalLM.Load(outDir, null, TestCompute.Cpu);
        var actual = AdapterMerge.Logits(merged, TestCompute.Cpu, AdapterRouting.None, ids);
        double max = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * max, $"logit {i}: {actual[i]} vs {expected[i]}");
    }
}
