using System.Text.Json.Nodes;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Planning;
using PeftSharp.Tensors;
using PeftSharp.IO;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Peft;

/// <summary>
/// Issue #13's merge findings, each against PEFT's arithmetic written out here: an F32 merge of a BF16 base keeps
/// float32 values; DoRA merges form f ⊙ (W + ΔW) in float32 and round once; rsLoRA's scale is alpha/√r in float64
/// rounded once; modules_to_save on a tied model replaces only the named module (the tie is broken) unless
/// ensure_weight_tying keeps it, in passes, saving, loading and merging.
/// </summary>
public class MergeAsPeftTests
{
    static readonly int[] Ids = [1, 5, 9, 33, 2, 17, 40, 8];

    static PeftModel Tiny(DType dtype = DType.F32, bool tied = false, int seed = 1)
    {
        var c = TinyModels.Config(tied: tied) with { TorchDtype = dtype == DType.BF16 ? "bfloat16" : "float32" };
        var w = TinyModels.Weights(c, (ulong)seed, dtype);
        if (tied && w.Remove(WeightNames.LmHead, out var head)) head.Dispose();
        return new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu);
    }

    static void Perturb(IEnumerable<Parameter> ps, int seed, float scale = 0.2f)
    {
        var rng = new Random(seed);
        foreach (var p in ps)
        {
            var v = p.Value.Floats;
            for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * scale;
        }
    }

    static void PerturbAdapter(PeftModel pm, string name, int seed) =>
        Perturb(pm.LoraModules.Where(m => m.Adapters.ContainsKey(name)).SelectMany(m => m.Adapters[name].Parameters()), seed);

    static float[] Logits(PeftModel pm, AdapterRouting routing) => AdapterMerge.Logits(pm.Model, pm.Compute, routing, Ids);

    static float[] Floats(Tensor t)
    {
        var f = new float[t.ElementCount];
        unsafe { DTypeConvert.ToFloat(t.Data, t.DType, f); }
        return f;
    }

    [Fact]
    public void F32MergeOfABf16BaseKeepsFloat32Values()
    {
        using var pm = Tiny(DType.BF16);
        pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = ["q_proj", "down_proj"] });
        PerturbAdapter(pm, "default", 3);
        var module = pm.LoraModules.First();
        var lin = (Linear)CausalLM.BaseProjection(module);
        var w0 = Floats(lin.Weight);
        var delta = LowRankBranch.Delta(new AdapterOp(module, module.Adapters["default"], null, null, pm.Compute));

        AdapterMerge.MergeActive(pm, mergeDtype: DType.F32);

        Assert.Equal(DType.F32, lin.Weight.DType);
        var merged = lin.Weight.Floats.ToArray();
        for (int i = 0; i < merged.Length; i++) Assert.Equal(w0[i] + delta[i], merged[i]);   // float(W_bf16) + ΔW, no rounding
        int withLowBits = merged.Count(v => (BitConverter.SingleToInt32Bits(v) & 0xFFFF) != 0);
        Assert.True(withLowBits > merged.Length * 9 / 10, $"only {withLowBits} of {merged.Length} values use float32's low 16 bits");
    }

    [Fact]
    public void DefaultMergeOfABf16BaseRoundsOnceToBf16()
    {
        using var pm = Tiny(DType.BF16);
        pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = ["q_proj"] });
        PerturbAdapter(pm, "default", 4);
        var module = pm.LoraModules.First();
        var lin = (Linear)CausalLM.BaseProjection(module);
        var w0 = Floats(lin.Weight);
        var delta = LowRankBranch.Delta(new AdapterOp(module, module.Adapters["default"], null, null, pm.Compute));
        AdapterMerge.MergeActive(pm, mergeDtype: DType.BF16);
        Assert.Equal(DType.BF16, lin.Weight.DType);
        var merged = Floats(lin.Weight);
        for (int i = 0; i < merged.Length; i++) Assert.Equal(Bf16.ToFloat(Bf16.FromFloat(w0[i] + delta[i])), merged[i]);
    }

    /// <summary>PEFT's DoraLinearVariant.merge: W + ΔW in float32, f = m / ‖W + ΔW‖ (float32), f·(W + ΔW), one rounding.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DoraMergeIntoBf16RoundsOnceInPeftsOrder(bool rsLora)
    {
        using var pm = Tiny(DType.BF16, seed: 2);
        pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 12, UseDora = true, UseRsLora = rsLora, TargetModulesRegex = "all-linear" });
        PerturbAdapter(pm, "default", 5);
        var expected = new Dictionary<string, float[]>();
        foreach (var m in pm.LoraModules)
        {
            var ad = m.Adapters["default"];
            var w = Floats(((Linear)CausalLM.BaseProjection(m)).Weight);
            var delta = LowRankBranch.Delta(new AdapterOp(m, ad, null, null, pm.Compute));
            var mag = ad.Magnitude!.Value.Floats;
            var e = new float[w.Length];
            for (int i = 0; i < m.OutFeatures; i++)
            {
                var row = new float[m.InFeatures];
                for (int k = 0; k < row.Length; k++) row[k] = w[i * m.InFeatures + k] + delta[i * m.InFeatures + k];
                float norm = (float)Math.Sqrt(row.Sum(x => (double)x * x));
                float f = mag[i] / norm;
                for (int k = 0; k < row.Length; k++) e[i * m.InFeatures + k] = Bf16.ToFloat(Bf16.FromFloat(f * row[k]));
            }
            expected[m.Name] = e;
        }
        pm.Merge();
        foreach (var m in pm.LoraModules) Assert.Equal(expected[m.Name], Floats(((Linear)CausalLM.BaseProjection(m)).Weight));
    }

    [Fact]
    public void RsLoraScaleIsAlphaOverSqrtRInFloat64RoundedOnce()
    {
        // Ranks where float32 arithmetic (alpha / MathF.Sqrt(r)) lands one step away from PEFT's Python float.
        var differing = new List<(int R, double Alpha)>();
        foreach (var alpha in new[] { 8.0, 16, 32, 12, 22.627 })
            for (int r = 1; r <= 128; r++)
                if ((float)alpha / MathF.Sqrt(r) != (float)(alpha / Math.Sqrt(r))) differing.Add((r, alpha));
        Assert.NotEmpty(differing);
        foreach (var (r, alpha) in differing.Take(10))
        {
            using var ad = new LoraAdapter("m", 8, 8, r, alpha, rsLora: true, 0f, useDora: false);
            Assert.Equal((float)(alpha / Math.Sqrt(r)), ad.Scaling);
        }
        using var plain = new LoraAdapter("m", 8, 8, 3, 22.627, rsLora: false, 0f, useDora: false);
        Assert.Equal((float)(22.627 / 3), plain.Scaling);
    }

    // ---- modules_to_save on a tied model ----

    /// <summary>The tied model's logits with the embedding and LM head given separately (an untied reference).</summary>
    static float[] UntiedReference(PeftModel tied, float[] embed, float[] head)
    {
        var c = tied.Model.Config with { TieWordEmbeddings = false };
        var w = new Dictionary<string, Tensor>();
        foreach (var (name, t) in tied.Model.NamedWeights())
        {
            var copy = new Tensor(DType.F32, t.Shape);
            Floats(t).CopyTo(copy.Floats);
            w[name] = copy;
        }
        embed.CopyTo(w[WeightNames.Embed].Floats);
        var h = new Tensor(DType.F32, c.VocabSize, c.HiddenSize);
        head.CopyTo(h.Floats);
        w[WeightNames.LmHead] = h;
        using var m = TinyModels.Build(c, w);
        var logits = AdapterMerge.Logits(m, TestCompute.Cpu, AdapterRouting.None, Ids);
        foreach (var t in w.Values) t.Dispose();
        return logits;
    }

    static void AssertClose(float[] expected, float[] actual, double tol = 1e-5)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * max, $"[{i}]: {actual[i]} vs {expected[i]}");
    }

    [Theory]
    [InlineData("lm_head", false)]
    [InlineData("embed_tokens", false)]
    [InlineData("embed_tokens,lm_head", false)]
    [InlineData("lm_head", true)]
    [InlineData("embed_tokens", true)]
    [InlineData("embed_tokens,lm_head", true)]
    public void ModulesToSaveOnATiedModelFollowsPeft(string modules, bool ensureTying)
    {
        using var pm = Tiny(tied: true);
        var original = Floats(pm.Model.Embed);
        var names = modules.Split(',');
        pm.AddAdapter("default", new LoraConfig { R = 2, TargetModules = ["q_proj"], ModulesToSave = names, EnsureWeightTying = ensureTying });
        var route = pm.Route("default").First;
        var saved = new[] { route.Embed, route.LmHead }.Where(p => p != null).Distinct().ToList();
        Perturb(saved!, 9, 0.5f);
        var trainable = pm.TrainableParameters().ToList();
        foreach (var p in saved) Assert.Contains(p!, trainable);

        // What the adapter's passes compute: the named module(s) replaced, the other at the original (tie broken),
        // or one shared copy in both places when ensure_weight_tying keeps the tie.
        float[] embed = route.Embed != null ? route.Embed.Value.Floats.ToArray() : original;
        float[] head = route.LmHead != null ? route.LmHead.Value.Floats.ToArray() : original;
        if (ensureTying) Assert.Same(route.Embed, route.LmHead);
        else
        {
            Assert.Equal(names.Contains("embed_tokens"), route.Embed != null);
            Assert.Equal(names.Contains("lm_head"), route.LmHead != null);
            Assert.NotSame(route.Embed, route.LmHead);
        }
        var expected = UntiedReference(pm, embed, head);
        var withAdapter = Logits(pm, pm.Route("default"));
        AssertClose(expected, withAdapter);

        // Saving writes each named module under PEFT's key; loading onto a fresh base reproduces the passes.
        string dir = TinyRun.Temp("mts");
        pm.Save(dir);
        using (var st = SafetensorsFile.Open(Path.Combine(dir, "adapter_model.safetensors")))
            Assert.Equal(names.Select(n => $"base_model.model.{(n == "lm_head" ? WeightNames.LmHead : WeightNames.Embed)}").Order(),
                st.Entries.Select(e => e.Name).Where(n => !n.Contains("lora_")).Order());
        Assert.Equal(ensureTying, JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json")))!["ensure_weight_tying"]?.GetValue<bool>() ?? false);
        using (var fresh = Tiny(tied: true))
        {
            fresh.LoadAdapter(dir);
            AssertClose(expected, Logits(fresh, fresh.Route("default")));
        }

        // merge_and_unload: the merged model alone (no adapter) computes the same, tied only when the tie was kept;
        // written and read back it still does. Unmerging restores the original tied model.
        var baseLogits = Logits(pm, AdapterRouting.None);
        pm.Merge();
        Assert.Equal(ensureTying, pm.Model.Tied);
        AssertClose(expected, Logits(pm, AdapterRouting.None));
        string merged = TinyRun.Temp("mts-merged");
        HfCheckpoint.Write(merged, pm.Model, null, DType.F32);
        Assert.Equal(ensureTying, JsonNode.Parse(File.ReadAllText(Path.Combine(merged, "config.json")))!["tie_word_embeddings"]!.GetValue<bool>());
        using (var reloaded = CausalLM.Load(merged, null, TestCompute.Cpu))
            AssertClose(expected, AdapterMerge.Logits(reloaded, TestCompute.Cpu, AdapterRouting.None, Ids));
        pm.Unmerge("default");
        Assert.True(pm.Model.Tied);
        Assert.Equal(baseLogits, Logits(pm, AdapterRouting.None));
        Directory.Delete(dir, true);
        Directory.Delete(merged, true);
    }

    [Theory]
    [InlineData(false, "lm_head", false, 1)]
    [InlineData(true, "lm_head", false, 1)]
    [InlineData(true, "embed_tokens,lm_head", false, 2)]
    [InlineData(true, "embed_tokens,lm_head", true, 1)]
    [InlineData(true, "embed_tokens", true, 1)]
    public void CalcCountsModulesToSaveCopiesAsTrainingMakesThem(bool tied, string modules, bool ensure, int copies)
    {
        var c = TinyModels.Config(tied: tied);
        var count = ModulesToSaveCount.Of(c, modules.Split(','), ensure);
        Assert.Equal(copies, count.Copies);
        Assert.Equal(copies * (long)c.VocabSize * c.HiddenSize, count.TrainableParameters);
        Assert.Equal(tied && ensure, count.TieKept);
        // The same number of distinct trainable copies as a PeftModel creates for that config.
        using var pm = Tiny(tied: tied);
        pm.AddAdapter("a", new LoraConfig { R = 2, TargetModules = ["q_proj"], ModulesToSave = modules.Split(','), EnsureWeightTying = ensure });
        long adapter = pm.LoraModules.SelectMany(m => m.Adapters["a"].Parameters()).Sum(p => p.Count);
        Assert.Equal(count.TrainableParameters, pm.TrainableParameters().Sum(p => p.Count) - adapter);
        Assert.Contains(tied ? (ensure ? "tie is kept" : "tie is broken") : "trainable parameters", count.Describe());
        Assert.Contains("\"wte\" is not supported", Assert.Throws<PeftException>(() => ModulesToSaveCount.Of(c, ["lm_head", "wte"], false)).Message);
    }

    [Fact]
    public void EnsureWeightTyingIsWrittenOnlyWhenSetAndReadBack()
    {
        Assert.DoesNotContain("ensure_weight_tying", new LoraConfig().ToJson());
        var c = LoraConfig.Parse(new LoraConfig { EnsureWeightTying = true, ModulesToSave = ["embed_tokens"] }.ToJson(), "x.json");
        Assert.True(c.EnsureWeightTying);
        Assert.Contains("\"ensure_weight_tying\" must be true or false", Assert.Throws<PeftException>(() =>
            LoraConfig.Parse("{\"peft_type\":\"LORA\",\"ensure_weight_tying\":\"yes\"}", "x.json")).Message);
    }
}
