using System.Text.Json.Nodes;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Quantization;
using PeftSharp.Tests.TestSupport;
using PeftSharp.Training;

namespace PeftSharp.Tests.Peft;

/// <summary>init_lora_weights "loftq" on a model, in a run, in saved files and in adapter_config.json.</summary>
public class LoftQModelTests
{
    static readonly QuantizeOptions Nf4Dq = new(Quant4Type.NF4, true, 64);
    static readonly int[] Ids = [0, 5, 9, 33, 2, 17, 40, 8, 11, 3];

    static LoraConfig Loftq(int iters = 2, string targets = "all-linear") =>
        new() { R = 4, LoraAlpha = 8, TargetModulesRegex = targets, InitLoraWeights = "loftq", LoftqConfig = new LoftQConfig { LoftqIter = iters } };

    static (ModelConfig, Dictionary<string, PeftSharp.Tensors.Tensor>) Tiny(ulong seed = 4)
    {
        var c = TinyModels.Config(layers: 2, hidden: 32, intermediate: 64, vocab: 61);
        return (c, TinyModels.Weights(c, seed));
    }

    static double Distance(float[] a, float[] b) => Math.Sqrt(a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum());

    [Fact]
    public void A_4bit_LoftQ_base_holds_Q_and_starts_closer_to_the_dense_model_than_plain_QLoRA()
    {
        var (c, w) = Tiny();
        using var dense = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu);
        var reference = Passes.Logits(dense, Ids);

        using var qlora = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu);
        qlora.Model.QuantizeDenseProjections(TestCompute.Cpu, Nf4Dq);
        qlora.AddAdapter("default", Loftq() with { InitLoraWeights = "true", LoftqConfig = null });

        using var loftq = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu);
        var report = new List<LoftQModuleReport>();
        var progress = new List<string>();
        var targeted = loftq.AddAdapter("default", Loftq(3), 0, Nf4Dq, report, progress.Add);
        loftq.Model.QuantizeDenseProjections(TestCompute.Cpu, Nf4Dq);
        Assert.Equal(targeted.Count, report.Count);
        Assert.Equal(14, targeted.Count);
        // Long work says how far it got: about ten lines (every second module of 14 here), the last at 14/14.
        Assert.Equal(7, progress.Count);
        Assert.StartsWith("LoftQ 14/14 modules", progress[^1]);
        Assert.Contains(report[^1].Module, progress[^1]);
        Assert.Equal(14, loftq.Model.Quantization!.QuantizedModules);

        double plainError = Distance(Passes.Logits(qlora, Ids), reference), loftqError = Distance(Passes.Logits(loftq, Ids), reference);
        Assert.True(loftqError < plainError, $"logits: LoftQ {loftqError} vs QLoRA {plainError} from the dense model");

        // Each targeted base is the Q that LoftQ fitted its factors to, and the adapter holds those factors.
        foreach (var m in loftq.LoraModules)
        {
            var q = Assert.IsType<QuantizedLinear>(m.Base);
            var wt = w[m.Name + ".weight"];
            var run = LoftQ.Run(TestCompute.Cpu, wt.Floats, m.OutFeatures, m.InFeatures, 4, 2f, 3, Nf4Dq, m.Name);
            Assert.Equal(run.Q.PackedSpan.ToArray(), q.Weight.PackedSpan.ToArray());
            Assert.True(q.Weight.DoubleQuant);
            Assert.Equal(run.A, m.Adapters["default"].A.Value.Floats.ToArray());
            Assert.Equal(run.B, m.Adapters["default"].B.Value.Floats.ToArray());
            run.Q.Dispose();
        }
        var (totalPlain, steps) = LoftQModuleReport.Total(report);
        Assert.Equal(3, steps.Length);
        Assert.True(steps[^1] < totalPlain);
    }

    [Fact]
    public void Without_a_4bit_format_the_base_stays_dense_and_holds_dequant_Q_as_PEFT_leaves_it()
    {
        var (c, w) = Tiny();
        using var pm = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu);
        pm.AddAdapter("default", Loftq(1, "model\\.layers\\.0\\.self_attn\\.q_proj"), 0, null);
        var m = Assert.Single(pm.LoraModules);
        var lin = Assert.IsType<Linear>(m.Base);
        var run = LoftQ.Run(TestCompute.Cpu, w[m.Name + ".weight"].Floats, m.OutFeatures, m.InFeatures, 4, 2f, 1, LoftQ.PeftFormat, m.Name);
        var expected = new float[m.OutFeatures * m.InFeatures];
        run.Q.Dequantize(TestCompute.Cpu, expected);
        var got = new float[expected.Length];
        lin.ReadRows(TestCompute.Cpu, 0, m.OutFeatures, got);
        Assert.Equal(expected, got);   // an F32 base holds dequant(Q) exactly
        Assert.Null(pm.Model.Quantization);
        run.Q.Dispose();
    }

    [Fact]
    public void What_LoftQ_cannot_do_is_refused_before_any_weight_changes()
    {
        var (c, w) = Tiny();
        using (var quantized = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu))
        {
            quantized.Model.QuantizeDenseProjections(TestCompute.Cpu, Nf4Dq);
            Assert.Contains("already 4-bit", Assert.Throws<PeftException>(() => quantized.AddAdapter("default", Loftq(), 0, Nf4Dq)).Message);
        }
        using (var pm = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu))
        {
            Assert.Contains("nf4", Assert.Throws<PeftException>(() => pm.AddAdapter("default", Loftq(), 0, new QuantizeOptions(Quant4Type.FP4, false, 64))).Message);
            pm.AddAdapter("plain", Loftq() with { InitLoraWeights = "true", LoftqConfig = null, TargetModulesRegex = ".*q_proj" });
            var e = Assert.Throws<PeftException>(() => pm.AddAdapter("default", Loftq(), 0, Nf4Dq));
            Assert.Contains("already carries an adapter", e.Message);
            Assert.All(pm.Model.Layers.SelectMany(l => l.Projections), p => Assert.IsType<Linear>(CausalLM.BaseProjection(p)));
            Assert.Contains("loftq_config", Assert.Throws<PeftException>(() => pm.AddAdapter("x", Loftq() with { LoftqConfig = null })).Message);
        }
    }

    [Fact]
    public void Config_writes_and_reads_loftq_config_as_PEFT_does()
    {
        var c = Loftq(5);
        var json = JsonNode.Parse(c.ToJson())!.AsObject();
        Assert.Equal("loftq", json["init_lora_weights"]!.GetValue<string>());
        var lq = json["loftq_config"]!.AsObject();
        Assert.Equal(["loftq_bits", "loftq_iter"], lq.Select(kv => kv.Key).ToArray());
        Assert.Equal(4, lq["loftq_bits"]!.GetValue<int>());
        Assert.Equal(5, lq["loftq_iter"]!.GetValue<int>());
        Assert.Equal(5, LoraConfig.Parse(c.ToJson(), "a.json").LoftqConfig!.LoftqIter);

        // Other inits write {} and ignore a stray loftq_config (PEFT resets it with a warning).
        Assert.Empty(JsonNode.Parse(new LoraConfig().ToJson())!["loftq_config"]!.AsObject());
        var stray = json.DeepClone().AsObject();
        stray["init_lora_weights"] = true;
        Assert.Null(LoraConfig.Parse(stray.ToJsonString(), "a.json").LoftqConfig);

        string With(string key, JsonNode? value) { var o = json.DeepClone().AsObject(); o[key] = value; return o.ToJsonString(); }
        Assert.Contains("needs loftq_config", Assert.Throws<PeftException>(() => LoraConfig.Parse(With("loftq_config", new JsonObject()), "a.json")).Message);
        Assert.Contains("loftq_bits 8", Assert.Throws<PeftException>(() => LoraConfig.Parse(With("loftq_config", new JsonObject { ["loftq_bits"] = 8, ["loftq_iter"] = 1 }), "a.json")).Message);
        Assert.Contains("loftq_iter must be ≥ 1", Assert.Throws<PeftException>(() => LoraConfig.Parse(With("loftq_config", new JsonObject { ["loftq_iter"] = 0 }), "a.json")).Message);
        Assert.Contains("loftq_config.loftq_iter", Assert.Throws<PeftException>(() => LoraConfig.Parse(With("loftq_config", new JsonObject { ["loftq_iter"] = "five" }), "a.json")).Message);
        Assert.Contains("must be an object", Assert.Throws<PeftException>(() => LoraConfig.Parse(With("loftq_config", 3), "a.json")).Message);
    }

    static TrainingOptions Run(string model, string output, string method, LoraConfig lora) => new()
    {
        ModelDir = model, DataFile = TinyRun.Data(), OutputDir = output, Method = method, Lora = lora,
        LearningRate = 1e-2, MaxSteps = 3, BatchSize = 2, MaxLength = 32, EvalSteps = 0, SaveSteps = 0,
        WarmupSteps = 0, LrScheduler = "constant", EvalFraction = 0.1, Seed = 5,
    };

    [Theory]
    [InlineData("qlora")]
    [InlineData("qdora")]
    public void A_LoftQ_run_saves_its_base_and_initial_adapter_and_both_reload_to_the_same_model(string method)
    {
        string model = TinyRun.ModelDir();
        string dir = TinyRun.Temp("loftq");
        var lora = Loftq(2) with { LoftqConfig = new LoftQConfig { LoftqIter = 2 } };
        float[] trained;
        TrainingResult result;
        using (var t = new TrainingRun(Run(model, dir, method, lora), TestCompute.Cpu))
        {
            result = t.Run();
            trained = Passes.Logits(t.Model, Ids);
        }
        string baseDir = LoftQRunFiles.BaseDir(dir), initDir = LoftQRunFiles.InitialAdapterDir(dir);
        var baseConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(baseDir, "config.json")))!;
        Assert.Equal("bitsandbytes", baseConfig["quantization_config"]!["quant_method"]!.GetValue<string>());
        Assert.Equal("nf4", baseConfig["quantization_config"]!["bnb_4bit_quant_type"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(baseDir, "tokenizer.json")));

        foreach (var adapter in new[] { result.AdapterDir!, initDir })
        {
            var raw = JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json")))!;
            // Saved as PEFT's LoftQ example saves it: PEFT's from_pretrained would run loftq_init again on "loftq".
            Assert.True(raw["init_lora_weights"]!.GetValue<bool>());
            Assert.Empty(raw["loftq_config"]!.AsObject());
            var origin = JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, "loftq.json")))!;
            Assert.Equal(2, origin["loftq_config"]!["loftq_iter"]!.GetValue<int>());
            Assert.Equal(4, origin["loftq_config"]!["loftq_bits"]!.GetValue<int>());
            Assert.Equal(14, origin["modules"]!.AsArray().Count);
            Assert.Equal(Path.GetFullPath(baseDir), raw["base_model_name_or_path"]!.GetValue<string>());
            Assert.Equal(method == "qdora", raw["use_dora"]!.GetValue<bool>());
        }
        var report = JsonNode.Parse(File.ReadAllText(LoftQRunFiles.ReportPath(dir)))!;
        Assert.Equal(14, report["modules"]!.AsArray().Count);
        Assert.True(report["total"]!["loftq"]![1]!.GetValue<double>() < report["total"]!["plain_nf4"]!.GetValue<double>());

        // The trained adapter on the saved base is the trained model.
        using (var back = PeftModel.Load(baseDir, TestCompute.Cpu))
        {
            Assert.True(back.Model.Quantization!.PreQuantized);
            back.LoadAdapter(result.AdapterDir!);
            Assert.Equal("true", back.Configs["default"].InitLoraWeights);
            Assert.Null(back.Configs["default"].LoftqConfig);
            double e = Numerics.RelativeError(Passes.Logits(back, Ids), trained.Select(x => (double)x).ToArray());
            Assert.True(e < 1e-5, $"reloaded trained adapter vs the run's model: {e:E2}");
        }
        // A config as PEFT's save_pretrained writes it when init_lora_weights was left at "loftq": loading reads the
        // fitted factors from the file and does not run LoftQ again.
        string asPeft = TinyRun.Temp("loftq-peft-config");
        foreach (var f in Directory.GetFiles(result.AdapterDir!)) File.Copy(f, Path.Combine(asPeft, Path.GetFileName(f)));
        var cfgPath = Path.Combine(asPeft, "adapter_config.json");
        var peftCfg = JsonNode.Parse(File.ReadAllText(cfgPath))!.AsObject();
        peftCfg["init_lora_weights"] = "loftq";
        peftCfg["loftq_config"] = new JsonObject { ["loftq_bits"] = 4, ["loftq_iter"] = 2 };
        File.WriteAllText(cfgPath, peftCfg.ToJsonString());
        using (var back = PeftModel.Load(baseDir, TestCompute.Cpu))
        {
            back.LoadAdapter(asPeft);
            Assert.Equal(2, back.Configs["default"].LoftqConfig!.LoftqIter);
            double e = Numerics.RelativeError(Passes.Logits(back, Ids), trained.Select(x => (double)x).ToArray());
            Assert.True(e < 1e-5, $"adapter whose config says \"loftq\" vs the run's model: {e:E2}");
        }
        // The initial adapter on the saved base is LoftQ's step-0 model, recomputed here from the original weights.
        using var fresh = PeftModel.Load(model, TestCompute.Cpu);
        fresh.AddAdapter("default", lora with { UseDora = method == "qdora" }, 5, Nf4Dq);
        fresh.Model.QuantizeDenseProjections(TestCompute.Cpu, Nf4Dq);
        using var init = PeftModel.Load(baseDir, TestCompute.Cpu);
        init.LoadAdapter(initDir);
        double e0 = Numerics.RelativeError(Passes.Logits(init, Ids), Passes.Logits(fresh, Ids).Select(x => (double)x).ToArray());
        Assert.True(e0 < 1e-5, $"reloaded initial adapter vs a fresh LoftQ init: {e0:E2}");
    }

    [Fact]
    public void Options_refuse_loftq_settings_that_cannot_apply()
    {
        string model = TinyRun.ModelDir();
        var plain = new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", LoftqConfig = new LoftQConfig { LoftqIter = 3 } };
        Assert.Contains("loftq_iter is set", Assert.Throws<PeftException>(() => Run(model, "out", "qlora", plain).Validate()).Message);
        Assert.Contains("full fine-tuning", Assert.Throws<PeftException>(() => Run(model, "out", "full", Loftq()).Validate()).Message);
    }
}
