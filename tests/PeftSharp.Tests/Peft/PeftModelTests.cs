using System.Text.Json.Nodes;
using PeftSharp.Inference;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Peft;

public class PeftModelTests
{
    static PeftModel Tiny(out ModelConfig c, string type = "llama", int seed = 1)
    {
        c = TinyModels.Config(type, layers: 2);
        return new PeftModel(TinyModels.Build(c, TinyModels.Weights(c, (ulong)seed)), TestCompute.Cpu);
    }

    static void Perturb(PeftModel pm, string name, int seed)
    {
        var rng = new Random(seed);
        foreach (var m in pm.LoraModules)
            if (m.Adapters.TryGetValue(name, out var a))
                foreach (var p in a.Parameters())
                {
                    var v = p.Value.Floats;
                    for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * 0.2f;
                }
    }

    static float[] Logits(PeftModel m, int[] ids)
    {
        var all = new float[ids.Length * m.Model.Config.VocabSize];
        using var s = Passes.Session(m, ids.Length);
        s.Feed(ids, Span<float>.Empty, all);
        return all;
    }

    static double[] D(float[] x) => x.Select(v => (double)v).ToArray();
    static readonly int[] Ids = [1, 5, 9, 33, 2, 17, 40, 8];

    [Fact]
    public void AllLinear_TargetsSevenProjectionsPerLayer_WithPeftParameterCount()
    {
        using var pm = Tiny(out var c);
        var targets = pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear" });
        Assert.Equal(7 * c.NumLayers, targets.Count);
        int C = c.HiddenSize, F = c.IntermediateSize, kv = c.NumKvHeads * c.HeadDim, q = c.NumHeads * c.HeadDim;
        long perLayer = 4L * ((C + q) + (C + kv) * 2 + (q + C) + (C + F) * 2 + (F + C));
        Assert.Equal(perLayer * c.NumLayers, pm.TrainableParameters().Sum(p => p.Count));
    }

    [Theory]
    [InlineData("[\"q_proj\",\"v_proj\"]", null, 4)]
    [InlineData("[\"self_attn.q_proj\"]", null, 2)]
    [InlineData("\".*\\\\.(q_proj|down_proj)\"", null, 4)]
    [InlineData("[\"q_proj\",\"k_proj\"]", "[\"k_proj\"]", 2)]
    [InlineData("[\"model.layers.1.mlp.up_proj\"]", null, 1)]
    public void TargetModules_FollowPeftMatching(string targets, string? exclude, int expected)
    {
        var json = $"{{\"peft_type\":\"LORA\",\"r\":2,\"target_modules\":{targets}{(exclude != null ? $",\"exclude_modules\":{exclude}" : "")}}}";
        var cfg = LoraConfig.Parse(json, "test");
        using var pm = Tiny(out _);
        Assert.Equal(expected, pm.AddAdapter("a", cfg).Count);
    }

    [Fact]
    public void LayersToTransform_AndRankPattern_FirstMatchInFileOrderWins()
    {
        var cfg = LoraConfig.Parse("""
            {"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":["q_proj","v_proj"],"layers_to_transform":[1],
             "rank_pattern":{"q_proj":2,"layers.1.self_attn.q_proj":6},"alpha_pattern":{"v_proj":3}}
            """, "test");
        using var pm = Tiny(out _);
        var targets = pm.AddAdapter("a", cfg);
        Assert.Equal(["model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"], targets.OrderBy(t => t));
        var q = pm.LoraModules.Single(m => m.Name.EndsWith("q_proj")).Adapters["a"];
        var v = pm.LoraModules.Single(m => m.Name.EndsWith("v_proj")).Adapters["a"];
        Assert.Equal(2, q.Rank);            // "q_proj" comes first in the file
        Assert.Equal(8f / 2, q.Scaling);
        Assert.Equal(4, v.Rank);
        Assert.Equal(3f / 4, v.Scaling);
    }

    [Fact]
    public void NoMatch_AndLoraOnLmHead_AreClearErrors()
    {
        using var pm = Tiny(out _);
        Assert.Contains("matched no module", Assert.Throws<PeftException>(() =>
            pm.AddAdapter("a", new LoraConfig { TargetModules = ["nonexistent"] })).Message);
        Assert.Contains("modules_to_save", Assert.Throws<PeftException>(() =>
            pm.AddAdapter("b", new LoraConfig { TargetModules = ["q_proj", "lm_head"] })).Message);
    }

    [Theory]
    [InlineData(false, DType.F32)]
    [InlineData(true, DType.F32)]
    [InlineData(false, DType.BF16)]
    public void SaveThenLoad_ReproducesOutputs_InPeftFormat(bool dora, DType saveDtype)
    {
        var dir = Path.Combine(Path.GetTempPath(), "peftsharp-adapter-" + Guid.NewGuid().ToString("N")[..8]);
        float[] expected;
        using (var pm = Tiny(out _))
        {
            pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 16, TargetModulesRegex = "all-linear", UseDora = dora, LoraDropout = 0.05 });
            Perturb(pm, "default", 3);
            pm.Save(dir, dtype: saveDtype, baseModelNameOrPath: "tiny/test");
            expected = Logits(pm, Ids);
        }

        // The file is PEFT's: prefixed keys, [r,in]/[out,r] shapes, magnitude without ".weight", format=pt.
        using (var st = SafetensorsFile.Open(Path.Combine(dir, "adapter_model.safetensors")))
        {
            Assert.Equal("pt", st.Metadata["format"]);
            var a = st.Entries.Single(e => e.Name == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
            Assert.Equal([4, 32], a.Shape);
            Assert.Equal(saveDtype, a.DType);
            Assert.Equal([48, 4], st.Entries.Single(e => e.Name == "base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight").Shape);
            Assert.Equal(dora, st.Entries.Any(e => e.Name == "base_model.model.model.layers.0.mlp.down_proj.lora_magnitude_vector"));
            Assert.Equal(2 * 7 * (dora ? 3 : 2), st.Entries.Count);
        }
        var cfgText = File.ReadAllText(Path.Combine(dir, "adapter_config.json"));
        var cfg = JsonNode.Parse(cfgText)!.AsObject();
        Assert.Equal(cfg.Select(kv => kv.Key).OrderBy(k => k, StringComparer.Ordinal), cfg.Select(kv => kv.Key));
        Assert.Equal("LORA", (string?)cfg["peft_type"]);
        Assert.Equal("CAUSAL_LM", (string?)cfg["task_type"]);
        Assert.Equal("all-linear", (string?)cfg["target_modules"]);
        Assert.Equal(dora, (bool?)cfg["use_dora"]);
        Assert.True((bool?)cfg["inference_mode"]);
        Assert.Equal(16, (int?)cfg["lora_alpha"]);
        Assert.Equal("tiny/test", (string?)cfg["base_model_name_or_path"]);
        Assert.False(cfg.ContainsKey("peft_version"));   // newer than 0.14 and at its default: left out

        using var loaded = Tiny(out _);
        var report = loaded.LoadAdapter(dir);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        var got = Logits(loaded, Ids);
        Numerics.AssertClose(got, D(expected), saveDtype == DType.BF16 ? 1e-2 : 1e-6, "reloaded adapter logits");
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Load_ShapeMismatch_NamesTensorAndShapes_AndReportsUnexpected()
    {
        var dir = Path.Combine(Path.GetTempPath(), "peftsharp-adapter-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), """{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"]}""");
        using (var bad = new Tensor(DType.F32, 3, 32))
        using (var extra = new Tensor(DType.F32, 2))
            SafetensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"),
                [("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", bad), ("base_model.model.something.else", extra)]);
        using var pm = Tiny(out _);
        var e = Assert.Throws<PeftException>(() => pm.LoadAdapter(dir));
        Assert.Contains("q_proj.lora_A.weight", e.Message);
        Assert.Contains("[3, 32]", e.Message);
        Assert.Contains("[2, 32]", e.Message);

        using (var ok = new Tensor(DType.BF16, 2, 32))
        using (var extra = new Tensor(DType.F32, 2))
            SafetensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"),
                [("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", ok), ("base_model.model.something.else", extra)]);
        var report = pm.LoadAdapter(dir, "x");
        Assert.Equal(["base_model.model.something.else"], report.Unexpected);
        Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", report.Missing);
        Assert.Equal(3, report.Missing.Count);   // layer 0 B, layer 1 A and B
        Directory.Delete(dir, true);
    }

    [Fact]
    public void SeveralAdapters_SwitchDisableUnload()
    {
        using var pm = Tiny(out _);
        var baseLogits = Logits(pm, Ids);
        pm.AddAdapter("a", new LoraConfig { R = 2, TargetModules = ["q_proj", "v_proj"] });
        Perturb(pm, "a", 1);
        var aLogits = Logits(pm, Ids);
        pm.AddAdapter("b", new LoraConfig { R = 3, TargetModules = ["up_proj"] });
        Perturb(pm, "b", 2);
        var bLogits = Logits(pm, Ids);
        Assert.True(Numerics.RelativeError(aLogits, D(baseLogits)) > 1e-3, "adapter a changes nothing");
        Assert.True(Numerics.RelativeError(bLogits, D(aLogits)) > 1e-3, "adapter b equals a");

        pm.SetActive("a");
        Numerics.AssertClose(Logits(pm, Ids), D(aLogits), 1e-6, "switch back to a");
        pm.SetActive(null);
        Numerics.AssertClose(Logits(pm, Ids), D(baseLogits), 1e-6, "all adapters disabled");
        pm.SetActive("b");
        pm.Unload("b");
        Assert.Null(pm.Active);
        Numerics.AssertClose(Logits(pm, Ids), D(baseLogits), 1e-6, "after unloading the active adapter");
        Assert.Throws<PeftException>(() => pm.SetActive("b"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MergedModel_EqualsUnmerged(bool dora)
    {
        using var pm = Tiny(out _, "qwen2", 4);
        pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", UseDora = dora });
        Perturb(pm, "default", 5);
        var before = Logits(pm, Ids);
        pm.Merge();
        Numerics.AssertClose(Logits(pm, Ids), D(before), 1e-5, "merged");
        pm.Unmerge("default");
        Numerics.AssertClose(Logits(pm, Ids), D(before), 1e-5, "unmerged again");
    }

    [Fact]
    public void CombineCat_IsTheWeightedSumOfDeltas_AndLinearNeedsEqualRanks()
    {
        using var pm = Tiny(out _);
        pm.AddAdapter("a", new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["q_proj"] });
        Perturb(pm, "a", 1);
        pm.AddAdapter("b", new LoraConfig { R = 3, LoraAlpha = 3, TargetModules = ["q_proj"] });
        Perturb(pm, "b", 2);
        pm.Combine(["a", "b"], [0.7, 0.4], "ab", "cat");
        foreach (var m in pm.LoraModules)
        {
            var delta = Delta(m.Adapters["ab"]);
            var a = Delta(m.Adapters["a"]);
            var b = Delta(m.Adapters["b"]);
            var expected = a.Select((v, i) => 0.7 * v + 0.4 * b[i]).ToArray();
            Numerics.AssertClose(delta.Select(v => (float)v).ToArray(), expected, 1e-5, "cat delta");
            Assert.Equal(5, m.Adapters["ab"].Rank);
            Assert.Equal(1f, m.Adapters["ab"].Scaling);
        }
        Assert.Equal(5, pm.Configs["ab"].R);
        Assert.Contains("same rank", Assert.Throws<PeftException>(() => pm.Combine(["a", "b"], [1, 1], "lin", "linear")).Message);
    }

    static double[] Delta(LoraAdapter ad) => LoraMath.Delta(ad);

    [Fact]
    public void ModulesToSave_LmHeadIsTrainedAndSaved()
    {
        var dir = Path.Combine(Path.GetTempPath(), "peftsharp-adapter-" + Guid.NewGuid().ToString("N")[..8]);
        using var pm = Tiny(out var c);
        pm.AddAdapter("default", new LoraConfig { R = 2, TargetModules = ["q_proj"], ModulesToSave = ["lm_head"] });
        Assert.Contains(pm.TrainableParameters(), p => p.Name == WeightNames.LmHead);
        pm.Save(dir);
        using var st = SafetensorsFile.Open(Path.Combine(dir, "adapter_model.safetensors"));
        Assert.Equal([c.VocabSize, c.HiddenSize], st.Entries.Single(e => e.Name == "base_model.model.lm_head.weight").Shape);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void AdapterConfig_ParseErrorsNameTheKey()
    {
        Assert.Contains("peft_type", Assert.Throws<PeftException>(() => LoraConfig.Parse("{\"r\":8}", "x.json")).Message);
        Assert.Contains("\"r\" must be a number", Assert.Throws<PeftException>(() => LoraConfig.Parse("{\"peft_type\":\"LORA\",\"r\":\"eight\"}", "x.json")).Message);
        Assert.Contains("target_modules", Assert.Throws<PeftException>(() => LoraConfig.Parse("{\"peft_type\":\"LORA\",\"target_modules\":5}", "x.json")).Message);
        Assert.Contains("x.json", Assert.Throws<PeftException>(() => LoraConfig.Parse("{not json", "x.json")).Message);
        // Unknown keys are ignored, as PEFT ≥ 0.14 does; floats accepted for lora_alpha.
        var c = LoraConfig.Parse("{\"peft_type\":\"LORA\",\"lora_alpha\":22.627,\"brand_new_key\":1,\"init_lora_weights\":\"gaussian\"}", "x.json");
        Assert.Equal(22.627, c.LoraAlpha, 6);
        Assert.Equal("gaussian", c.InitLoraWeights);
    }

    [Fact]
    public void Disposing_a_LoRA_module_frees_the_base_it_wraps()
    {
        var w = new Tensor(DType.F32, 4, 6);
        var lin = new PeftSharp.Nn.Linear("model.layers.0.self_attn.q_proj", w, null);
        lin.OwnWeight();
        var m = new LoraLinear(lin, 0);
        m.Add("default", new LoraAdapter(lin.Name, 6, 4, 2, 4f, false, 0f, false));
        Assert.False(w.IsDisposed);
        m.Dispose();
        Assert.True(w.IsDisposed);
    }
}
