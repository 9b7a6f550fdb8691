using PeftSharp.IO;
using PeftSharp.Tests.IO;
using PeftSharp.Kernels.Reference;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Planning;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Models;

/// <summary>
/// phi3: fused qkv_proj and gate_up_proj, sliding window on every layer. Checked against an independent float64 forward
/// written from transformers' modeling_phi3 (Phi3Attention slices qkv as q | k | v; Phi3MLP chunks gate_up as gate | up
/// and computes up · silu(gate)), against the equivalent split-projection llama model, and by finite differences.
/// </summary>
public class Phi3Tests
{
    static ModelConfig Config(int? window = null, int layers = 2) =>
        TinyModels.Config("phi3", layers: layers, kvHeads: 2) with { SlidingWindow = window };

    static double[] D(ReadOnlySpan<float> x) { var d = new double[x.Length]; for (int i = 0; i < x.Length; i++) d[i] = x[i]; return d; }

    /// <summary>Phi3ForCausalLM's forward in float64, from the transformers source (eager attention, no dropout);
    /// <paramref name="invFreq"/> and <paramref name="ropeScale"/> override plain RoPE (LongRoPE).</summary>
    internal static double[] ReferenceLogits(ModelConfig c, Dictionary<string, Tensor> w, int[] ids, double[]? invFreq = null, double ropeScale = 1)
    {
        int T = ids.Length, C = c.HiddenSize, Dh = c.HeadDim, hq = c.NumHeads, hkv = c.NumKvHeads, F = c.IntermediateSize;
        int qd = hq * Dh, kvd = hkv * Dh;
        double[] W(string name) => D(w[name].Floats);
        double[] MatVecRows(double[] x, double[] m, int rows, int outF, int inF)
        {
            var y = new double[rows * outF];
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < outF; o++)
                {
                    double s = 0;
                    for (int i = 0; i < inF; i++) s += x[r * inF + i] * m[o * inF + i];
                    y[r * outF + o] = s;
                }
            return y;
        }
        var emb = W(WeightNames.Embed);
        var h = new double[T * C];
        for (int t = 0; t < T; t++) Array.Copy(emb, ids[t] * C, h, t * C, C);
        invFreq ??= Enumerable.Range(0, Dh / 2).Select(i => 1.0 / Math.Pow(c.RopeTheta, 2.0 * i / Dh)).ToArray();
        var pos = Enumerable.Range(0, T).ToArray();
        for (int l = 0; l < c.NumLayers; l++)
        {
            var xn = RmsNormReference.Forward(h, W(WeightNames.InputNorm(l)), T, C, c.RmsNormEps).Y;
            var qkv = MatVecRows(xn, W(WeightNames.Attn(l, "qkv_proj") + ".weight"), T, qd + 2 * kvd, C);
            double[] q = new double[T * qd], k = new double[T * kvd], v = new double[T * kvd];
            for (int t = 0; t < T; t++)
            {
                Array.Copy(qkv, t * (qd + 2 * kvd), q, t * qd, qd);
                Array.Copy(qkv, t * (qd + 2 * kvd) + qd, k, t * kvd, kvd);
                Array.Copy(qkv, t * (qd + 2 * kvd) + qd + kvd, v, t * kvd, kvd);
            }
            q = RopeReference.Rotate(q, pos, hq, Dh, invFreq, scale: ropeScale);
            k = RopeReference.Rotate(k, pos, hkv, Dh, invFreq, scale: ropeScale);
            var attn = AttentionReference.Forward(q, k, v, null, 1, T, hq, hkv, Dh, c.SlidingWindow ?? 0).Out;
            var o = MatVecRows(attn, W(WeightNames.Attn(l, "o_proj") + ".weight"), T, C, qd);
            for (int i = 0; i < h.Length; i++) h[i] += o[i];
            var xn2 = RmsNormReference.Forward(h, W(WeightNames.PostNorm(l)), T, C, c.RmsNormEps).Y;
            var gu = MatVecRows(xn2, W(WeightNames.Mlp(l, "gate_up_proj") + ".weight"), T, 2 * F, C);
            var act = new double[T * F];
            for (int t = 0; t < T; t++)
                for (int j = 0; j < F; j++)
                {
                    double gate = gu[t * 2 * F + j], up = gu[t * 2 * F + F + j];
                    act[t * F + j] = up * gate / (1 + Math.Exp(-gate));
                }
            var down = MatVecRows(act, W(WeightNames.Mlp(l, "down_proj") + ".weight"), T, C, F);
            for (int i = 0; i < h.Length; i++) h[i] += down[i];
        }
        var hn = RmsNormReference.Forward(h, W(WeightNames.FinalNorm), T, C, c.RmsNormEps).Y;
        return MatVecRows(hn, W(WeightNames.LmHead), T, c.VocabSize, C);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(4)]   // window shorter than the sequence
    public void Logits_match_float64_reference_from_the_transformers_source(int? window)
    {
        var c = Config(window);
        var w = TinyModels.Weights(c, 3);
        using var m = TinyModels.Build(c, w);
        var ids = TinyModels.RandomIds(new Random(1), 11, c.VocabSize);
        Numerics.AssertClose(Passes.Logits(m, ids), ReferenceLogits(c, w, ids), 1e-4, "phi3 logits vs float64 reference");
        foreach (var t in w.Values) t.Dispose();
    }

    [Fact]
    public void Equals_the_llama_model_with_the_fused_weights_split()
    {
        var c = Config(window: 5);
        var w = TinyModels.Weights(c, 4);
        int C = c.HiddenSize, F = c.IntermediateSize, qd = c.NumHeads * c.HeadDim, kvd = c.NumKvHeads * c.HeadDim;
        var split = new Dictionary<string, Tensor>();
        Tensor Rows(Tensor src, int row0, int rows, int cols)
        {
            var t = new Tensor(DType.F32, rows, cols);
            src.Floats.Slice(row0 * cols, rows * cols).CopyTo(t.Floats);
            return t;
        }
        foreach (var (name, t) in w)
        {
            if (name.EndsWith("qkv_proj.weight"))
            {
                string p = name[..^"qkv_proj.weight".Length];
                split[p + "q_proj.weight"] = Rows(t, 0, qd, C);
                split[p + "k_proj.weight"] = Rows(t, qd, kvd, C);
                split[p + "v_proj.weight"] = Rows(t, qd + kvd, kvd, C);
            }
            else if (name.EndsWith("gate_up_proj.weight"))
            {
                string p = name[..^"gate_up_proj.weight".Length];
                split[p + "gate_proj.weight"] = Rows(t, 0, F, C);
                split[p + "up_proj.weight"] = Rows(t, F, F, C);
            }
            else split[name] = t;
        }
        var ids = TinyModels.RandomIds(new Random(2), 13, c.VocabSize);
        using var phi = TinyModels.Build(c, w);
        using var mistral = TinyModels.Build(c with { ModelType = "mistral" }, split);
        Assert.Equal(4, phi.Layers[0].Projections.Count());
        Numerics.AssertClose(Passes.Logits(phi, ids), D(Passes.Logits(mistral, ids)), 1e-6, "phi3 vs split-weight mistral");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Lora_and_dora_on_fused_modules_match_finite_differences_with_window_and_packing(bool dora)
    {
        var c = Config(window: 3);
        var w = TinyModels.Weights(c, 8);
        using var pm = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu);
        var targeted = pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", UseDora = dora }, 9);
        Assert.Equal(["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], targeted.Take(4).Select(n => n.Split('.')[^1]));
        DirectionalDerivative.RandomizeB(pm);
        const int B = 2, T = 9;
        var (ids, pos, seg, tgt) = DirectionalDerivative.PackedPairs(c.VocabSize, B, T);
        foreach (var (what, along) in new (string, Func<string, bool>?)[] { ("magnitude", n => n.Contains("magnitude")), ("A,B", n => n.Contains("lora_")), ("all", null) })
        {
            if (!dora && what == "magnitude") continue;
            // DoRA detaches ‖W + s·B·A‖ (as PEFT does), so its A/B gradient is not the loss's derivative: for DoRA only the
            // magnitude direction is a finite-difference check (A/B wiring is the LoRA case's, checked above).
            if (dora && what != "magnitude") continue;
            foreach (var p in pm.TrainableParameters()) p.Grad.Floats.Clear();
            double analytic = DirectionalDerivative.Check(pm, B, T, ids, pos, seg, tgt, out double numeric, along);
            Assert.True(Math.Abs(analytic) > 1e-3, $"degenerate check: {analytic}");
            Assert.True(Math.Abs(analytic - numeric) / Math.Abs(numeric) < 2e-2, $"dora={dora} along {what}: analytic {analytic} vs numeric {numeric}");
        }
        foreach (var t in w.Values) t.Dispose();
    }

    [Fact]
    public void Peft_adapter_round_trips_with_fused_names_and_default_targets()
    {
        var c = Config(window: 6);
        var w = TinyModels.Weights(c, 5);
        var dir = Path.Combine(Path.GetTempPath(), "peftsharp-phi3-" + Guid.NewGuid().ToString("N")[..8]);
        var ids = TinyModels.RandomIds(new Random(3), 10, c.VocabSize);
        float[] expected;
        using (var pm = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu))
        {
            // No target_modules: PEFT's default for phi3 is the four fused/linear modules.
            var targeted = pm.AddAdapter("default", new LoraConfig { R = 2, LoraAlpha = 4 }, 1);
            Assert.Equal(2 * 4, targeted.Count);
            var rng = new Random(2);
            foreach (var p in pm.TrainableParameters())
            {
                var v = p.Value.Floats;
                for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * 0.3f;
            }
            expected = Passes.Logits(pm, ids);
            Assert.NotEqual(Passes.Logits(pm.Model, ids), expected);  // the adapter does something
            pm.Save(dir);
        }
        try
        {
            int qkvOut = (c.NumHeads + 2 * c.NumKvHeads) * c.HeadDim;
            using (var st = SafetensorsFile.Open(Path.Combine(dir, "adapter_model.safetensors")))
            {
                Assert.Equal([2, c.HiddenSize], st.Entries.Single(e => e.Name == "base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight").Shape);
                Assert.Equal([qkvOut, 2], st.Entries.Single(e => e.Name == "base_model.model.model.layers.1.self_attn.qkv_proj.lora_B.weight").Shape);
                Assert.Equal([2 * c.IntermediateSize, 2], st.Entries.Single(e => e.Name == "base_model.model.model.layers.0.mlp.gate_up_proj.lora_B.weight").Shape);
                Assert.Equal(2 * 4 * 2, st.Entries.Count);
            }
            using var loaded = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu);
            var report = loaded.LoadAdapter(dir);
            Assert.Empty(report.Missing);
            Assert.Empty(report.Unexpected);
            Numerics.AssertClose(Passes.Logits(loaded, ids), D(expected), 1e-6, "reloaded phi3 adapter");

            // Merged into the base, the model computes the same function.
            loaded.Merge();
            Numerics.AssertClose(Passes.Logits(loaded.Model, ids), D(expected), 1e-4, "merged phi3 adapter");
        }
        finally { Directory.Delete(dir, true); foreach (var t in w.Values) t.Dispose(); }
    }

    [Fact]
    public void Phi3_mini_config_loads_with_published_parameter_count_and_fused_module_counts()
    {
        var c = ModelConfig.Load(IoTestPaths.ModelConfig("phi-3-mini-4k-instruct.json"));
        Assert.Equal("phi3", c.ModelType);
        Assert.True(c.FusedProjections);
        Assert.Equal(2047, c.SlidingWindow);
        Assert.All(Enumerable.Range(0, c.NumLayers), l => Assert.Equal(2047, c.AttentionWindow(l)));
        Assert.Equal(96, c.HeadDim);
        Assert.Equal(3_821_079_552, ParameterCounter.TotalParameters(c));   // Phi-3-mini's published 3.8B
        var modules = ParameterCounter.Projections(c);
        Assert.Equal(["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], modules.Select(m => m.Name));
        Assert.Equal(9216L * 3072, modules[0].WeightParameters);
        // r = 16 all-linear: 32 layers × 16 × Σ(in + out) = 32 · 16 · (12288 + 6144 + 19456 + 11264)
        Assert.Equal(32L * 16 * (12288 + 6144 + 19456 + 11264), ParameterCounter.AdapterParameters(c, ParameterCounter.ParseTargets("all-linear", c), 16, false));
        var e = Assert.Throws<PeftException>(() => ParameterCounter.ParseTargets("q_proj,v_proj", c));
        Assert.Contains("qkv_proj", e.Message);
        Assert.Equal(c, ModelConfig.Parse(c.ToJson(), "round-trip.json"));
    }

    [Fact]
    public void Partial_rotary_factor_other_than_one_is_a_clear_error()
    {
        const string json = """{"model_type":"phi3","vocab_size":100,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"partial_rotary_factor":0.75}""";
        var e = Assert.Throws<PeftException>(() => ModelConfig.Parse(json, "phi4.json"));
        Assert.Contains("phi4.json", e.Message);
        Assert.Contains("partial_rotary_factor", e.Message);
    }
}
