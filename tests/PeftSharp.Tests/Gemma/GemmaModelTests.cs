using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Gemma;

/// <summary>
/// gemma2 and gemma3_text end to end on tiny models where every Gemma feature acts (see TinyModels.WithGemmaFields):
/// the engine against the independent float64 forward of <see cref="GemmaReference"/>, adapters by finite differences,
/// PEFT files in and out, merge, scoring and full checkpoints. Incremental decoding, full fine-tuning and QLoRA/QDoRA
/// gradients run in the shared theories (KvCacheTests, CausalLMGradientTests, QLoraModelTests) with gemma rows.
/// </summary>
public class GemmaModelTests
{
    static ModelConfig Config(string type, int? window = null, int layers = 2) =>
        TinyModels.Config(type, tied: true, layers: layers, kvHeads: 2) with { SlidingWindow = window };

    static double[] D(ReadOnlySpan<float> x) { var d = new double[x.Length]; for (int i = 0; i < x.Length; i++) d[i] = x[i]; return d; }

    [Theory]
    [InlineData("gemma2", null, 2)]
    [InlineData("gemma2", 4, 3)]        // window shorter than the sequence on layers 0 and 2
    [InlineData("gemma3_text", null, 2)]
    [InlineData("gemma3_text", 3, 4)]   // layers 0, 2 local (window 3, RoPE base 100), 1, 3 global (linear-scaled RoPE)
    public void Logits_match_float64_reference_from_the_transformers_source(string type, int? window, int layers)
    {
        var c = Config(type, window, layers);
        var w = TinyModels.Weights(c, 3);
        using var m = TinyModels.Build(c, w);
        var ids = TinyModels.RandomIds(new Random(1), 11, c.VocabSize);
        Numerics.AssertClose(Passes.Logits(m, ids), GemmaReference.Logits(c, w, ids), 1e-4, $"{type} logits vs float64 reference");
        foreach (var t in w.Values) t.Dispose();
    }

    [Fact]
    public void Every_gemma_feature_changes_the_logits()
    {
        // Guards the reference comparison: a feature the engine ignored would still have to match the reference.
        var c = Config("gemma2", window: 4, layers: 3);
        var w = TinyModels.Weights(c, 5);
        var ids = TinyModels.RandomIds(new Random(2), 11, c.VocabSize);
        var baseline = GemmaReference.Logits(c, w, ids);
        foreach (var variant in new[]
                 {
                     c with { AttnLogitSoftcapping = null }, c with { FinalLogitSoftcapping = null },
                     c with { QueryPreAttnScalar = c.HeadDim }, c with { SlidingWindow = null },
                 })
            Assert.True(Numerics.RelativeError(GemmaReference.Logits(variant, w, ids), baseline) > 1e-3, $"no effect: {variant}");
        var g3 = Config("gemma3_text", window: 3, layers: 2);
        var w3 = TinyModels.Weights(g3, 5);
        var b3 = GemmaReference.Logits(g3, w3, ids);
        foreach (var variant in new[] { g3 with { RopeLocalTheta = 10000 }, g3 with { RopeScaling = null } })
            Assert.True(Numerics.RelativeError(GemmaReference.Logits(variant, w3, ids), b3) > 1e-3, $"no effect: {variant}");
        foreach (var t in w.Values.Concat(w3.Values)) t.Dispose();
    }

    [Fact]
    public void Embedding_scale_is_rounded_to_the_model_dtype_as_transformers_computes_it()
    {
        var c = Config("gemma2");
        var w32 = TinyModels.Weights(c, 3);
        var w16 = TinyModels.Weights(c, 3, DType.BF16);
        using var m32 = TinyModels.Build(c, w32);
        using var m16 = TinyModels.Build(c, w16);
        Assert.Equal(MathF.Sqrt(32), m32.EmbedScale);
        Assert.Equal(5.65625f, m16.EmbedScale);   // √32 = 5.6568… in bfloat16
        using var llama = TinyModels.Build(TinyModels.Config("llama"), TinyModels.Weights(TinyModels.Config("llama"), 3));
        Assert.Equal(1f, llama.EmbedScale);
        foreach (var t in w32.Values.Concat(w16.Values)) t.Dispose();
    }

    [Theory]
    [InlineData("gemma2", false)]
    [InlineData("gemma2", true)]
    [InlineData("gemma3_text", false)]
    [InlineData("gemma3_text", true)]
    [InlineData("gemma2", true, true)]        // QDoRA: 4-bit NF4 base
    [InlineData("gemma3_text", false, true)]  // QLoRA
    public void Lora_and_dora_match_finite_differences_with_windows_and_packing(string type, bool dora, bool quantized = false)
    {
        var c = quantized ? QLoRA.QLoraTestModels.Config(type) with { TieWordEmbeddings = true, SlidingWindow = 3 } : Config(type, window: 3, layers: 2);
        var w = TinyModels.Weights(c, 8);
        using var pm = new PeftModel(quantized ? QLoRA.QLoraTestModels.Quantized(c, w) : TinyModels.Build(c, w), TestCompute.Cpu);
        Assert.Equal(quantized, pm.Model.Quantization != null);
        var targeted = pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", UseDora = dora }, 9);
        // PEFT's all-linear on Gemma: every nn.Linear of the decoder (lm_head excluded), by their Gemma module names
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], targeted.Take(7).Select(n => n.Split('.')[^1]));
        Assert.Equal(2 * 7, targeted.Count);
        DirectionalDerivative.RandomizeB(pm);
        const int B = 2, T = 9;
        var (ids, pos, seg, tgt) = DirectionalDerivative.PackedPairs(c.VocabSize, B, T);
        // DoRA detaches ‖W + s·B·A‖ as PEFT does, so only its magnitude direction is the loss's derivative.
        Func<string, bool>? along = dora ? n => n.Contains("magnitude") : null;
        double analytic = DirectionalDerivative.Check(pm, B, T, ids, pos, seg, tgt, out double numeric, along);
        Assert.True(Math.Abs(analytic) > 1e-3, $"degenerate check: {analytic}");
        Assert.True(Math.Abs(analytic - numeric) / Math.Abs(numeric) < 2e-2, $"{type} dora={dora}: analytic {analytic} vs numeric {numeric}");
        foreach (var t in w.Values) t.Dispose();
    }

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3_text")]
    public void Peft_adapter_round_trips_with_gemma_names_and_merges(string type)
    {
        var c = Config(type, window: 4);
        var w = TinyModels.Weights(c, 5);
        var dir = Path.Combine(Path.GetTempPath(), "peftsharp-gemma-" + Guid.NewGuid().ToString("N")[..8]);
        var ids = TinyModels.RandomIds(new Random(3), 10, c.VocabSize);
        float[] expected;
        using (var pm = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu))
        {
            // No target_modules: PEFT's default for gemma2 / gemma3_text is q_proj, v_proj.
            var targeted = pm.AddAdapter("default", new LoraConfig { R = 2, LoraAlpha = 4 }, 1);
            Assert.Equal(["q_proj", "v_proj"], targeted.Take(2).Select(n => n.Split('.')[^1]));
            pm.AddAdapter("all", new LoraConfig { R = 2, LoraAlpha = 4, TargetModulesRegex = "all-linear" }, 2);
            pm.SetActive("all");
            var rng = new Random(2);
            foreach (var p in pm.TrainableParameters())
            {
                var v = p.Value.Floats;
                for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * 0.3f;
            }
            expected = Passes.Logits(pm, ids);
            Assert.True(Numerics.RelativeError(Passes.Logits(pm.Model, ids), D(expected)) > 1e-3, "the adapter does something");
            pm.Save(dir, "all");
        }
        try
        {
            using (var st = SafetensorsFile.Open(Path.Combine(dir, "adapter_model.safetensors")))
            {
                Assert.Equal([2, c.HiddenSize], st.Entries.Single(e => e.Name == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").Shape);
                Assert.Equal([c.HiddenSize, 2], st.Entries.Single(e => e.Name == "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").Shape);
                Assert.Equal(2 * 7 * 2, st.Entries.Count);
            }
            using var loaded = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu);
            var report = loaded.LoadAdapter(dir);
            Assert.Empty(report.Missing);
            Assert.Empty(report.Unexpected);
            Numerics.AssertClose(Passes.Logits(loaded, ids), D(expected), 1e-6, $"reloaded {type} adapter");
            loaded.Merge();
            Numerics.AssertClose(Passes.Logits(loaded.Model, ids), D(expected), 1e-4, $"merged {type} adapter");
        }
        finally { Directory.Delete(dir, true); foreach (var t in w.Values) t.Dispose(); }
    }

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3_text")]
    public void Scoring_through_the_cache_equals_the_training_loss(string type)
    {
        // Scorer: KV-cache logits with the final soft cap; ModelPass: the fused soft-capped head + cross-entropy.
        var c = Config(type, window: 5);
        var w = TinyModels.Weights(c, 9);
        using var m = TinyModels.Build(c, w);
        var ids = TinyModels.RandomIds(new Random(4), 17, c.VocabSize);
        var score = Passes.Score(m, ids, chunk: 6);
        using var pass = Passes.Model(m, 1, ids.Length, recompute: false);
        var (loss, count) = pass.Loss(ids, Enumerable.Range(0, ids.Length).ToArray(), [], ids.Skip(1).Append(-100).ToArray());
        Assert.Equal(ids.Length - 1, count);
        Assert.Equal(-loss, score.Total, 1e-3);
        foreach (var t in w.Values) t.Dispose();
    }

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3_text")]
    public void Full_checkpoint_written_after_full_fine_tuning_reloads_with_stored_norm_weights(string type)
    {
        var c = Config(type, window: 4);
        var w = TinyModels.Weights(c, 12);
        var src = TinyModels.WriteFolder(c, w);
        var dst = src + "-out";
        var ids = TinyModels.RandomIds(new Random(5), 9, c.VocabSize);
        try
        {
            float[] before;
            using (var m = CausalLM.Load(src))
            {
                m.MakeFullyTrainable();
                before = Passes.Logits(m, ids);
                HfCheckpoint.Write(dst, m, src, DType.F32);
            }
            // Stored as transformers stores them: w of the (1 + w) norm, not 1 + w.
            using (var st = SafetensorsCheckpoint.OpenDirectory(dst))
            {
                var n = st.Get(WeightNames.PreFfnNorm(0)).Floats.ToArray();
                Assert.Equal(w[WeightNames.PreFfnNorm(0)].Floats.ToArray(), n);
                Assert.True(n.All(x => Math.Abs(x) < 0.2f));
            }
            Assert.Equal(c, ModelConfig.Load(dst));
            using var back = CausalLM.Load(dst);
            Numerics.AssertClose(Passes.Logits(back, ids), D(before), 1e-6, "reloaded full checkpoint");
        }
        finally
        {
            Directory.Delete(src, true);
            if (Directory.Exists(dst)) Directory.Delete(dst, true);
            foreach (var t in w.Values) t.Dispose();
        }
    }

    [Fact]
    public void Multimodal_gemma3_checkpoint_loads_its_language_model_and_ignores_the_vision_tower()
    {
        var c = Config("gemma3_text", window: 3);
        var w = TinyModels.Weights(c, 13);
        var dir = Path.Combine(Path.GetTempPath(), "peftsharp-gemma3mm-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            // Gemma3ForConditionalGeneration's layout (transformers < 4.52): language_model.model.*, plus vision weights.
            var text = System.Text.Json.Nodes.JsonNode.Parse(c.ToJson())!.AsObject();
            text.Remove("architectures");
            text.Remove("torch_dtype");
            var mm = new System.Text.Json.Nodes.JsonObject
            {
                ["architectures"] = new System.Text.Json.Nodes.JsonArray("Gemma3ForConditionalGeneration"),
                ["model_type"] = "gemma3",
                ["text_config"] = text,
                ["vision_config"] = new System.Text.Json.Nodes.JsonObject { ["model_type"] = "siglip_vision_model", ["hidden_size"] = 16 },
                ["torch_dtype"] = "float32",
            };
            File.WriteAllText(Path.Combine(dir, "config.json"), mm.ToJsonString());
            using var vision = new Tensor(DType.F32, 4, 4);
            var tensors = w.Select(kv => ("language_model." + kv.Key, kv.Value)).Append(("vision_tower.vision_model.patch.weight", vision));
            SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);

            var parsed = ModelConfig.Load(dir);
            Assert.True(parsed.TextOfMultimodal);
            Assert.Equal("gemma3_text", parsed.ModelType);
            Assert.Equal(c, parsed with { TextOfMultimodal = false });
            using var m = CausalLM.Load(dir);
            var ids = TinyModels.RandomIds(new Random(6), 8, c.VocabSize);
            Numerics.AssertClose(Passes.Logits(m, ids), GemmaReference.Logits(c, w, ids), 1e-4, "multimodal checkpoint's text model");
            // Saved configs describe the text model that was computed.
            Assert.Contains("\"gemma3_text\"", m.Config.ToJson());
        }
        finally { Directory.Delete(dir, true); foreach (var t in w.Values) t.Dispose(); }
    }
}
