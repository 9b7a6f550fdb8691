using System.Text.Json.Nodes;
using PeftSharp.Inference;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Peft;

/// <summary>PEFT's `bias` field: "none", "all" (every bias), "lora_only" (the targeted modules' biases).</summary>
public unsafe class BiasModeTests
{
    /// <summary>The pass the layer calls of this class run in (routing every row to the adapter under test).</summary>
    static readonly PassContext Pass = new(TestCompute.Cpu, AdapterRouting.All("default")) { Training = true, DropoutSeed = 3, DropoutStep = 1 };

    static PeftModel Qwen(out ModelConfig c, int seed = 1)
    {
        c = TinyModels.Config("qwen2", layers: 2);          // q/k/v carry biases, o/mlp do not
        return new PeftModel(TinyModels.Build(c, TinyModels.Weights(c, (ulong)seed)), TestCompute.Cpu);
    }

    static LoraConfig Cfg(string bias, params string[] targets) => new() { R = 4, LoraAlpha = 8, TargetModules = targets, Bias = bias };

    [Theory]
    [InlineData("none", new[] { "q_proj", "o_proj" }, new string[0])]
    [InlineData("lora_only", new[] { "q_proj", "o_proj" }, new[] { "q_proj" })]
    [InlineData("all", new[] { "q_proj" }, new[] { "q_proj", "k_proj", "v_proj" })]
    public void TrainableBiases_FollowTheMode(string bias, string[] targets, string[] expectedBiasModules)
    {
        using var pm = Qwen(out var c);
        pm.AddAdapter("default", Cfg(bias, targets));
        var biasNames = pm.TrainableParameters().Select(p => p.Name).Where(n => n.EndsWith(".bias")).OrderBy(n => n).ToList();
        var expected = Enumerable.Range(0, c.NumLayers).SelectMany(i => expectedBiasModules.Select(m => $"model.layers.{i}.self_attn.{m}.bias")).OrderBy(n => n).ToList();
        Assert.Equal(expected, biasNames);
        pm.SetActive(null);
        Assert.Empty(pm.TrainableParameters());
    }

    [Fact]
    public void LlamaWithoutBiases_HasNoBiasParameters()
    {
        var c = TinyModels.Config("llama", layers: 1);
        using var pm = new PeftModel(TinyModels.Build(c, TinyModels.Weights(c, 1)), TestCompute.Cpu);
        pm.AddAdapter("default", new LoraConfig { R = 2, LoraAlpha = 4, TargetModulesRegex = "all-linear", Bias = "all" });
        Assert.DoesNotContain(pm.TrainableParameters(), p => p.Name.EndsWith(".bias"));
    }

    static (int[] ids, int[] pos, int[] seg, int[] tgt) Batch(int vocab, int n, int seed)
    {
        var rng = new Random(seed);
        var ids = TinyModels.RandomIds(rng, n, vocab);
        var pos = Enumerable.Range(0, n).ToArray();
        var tgt = Enumerable.Range(0, n).Select(i => i == n - 1 ? -100 : ids[i + 1]).ToArray();
        return (ids, pos, [], tgt);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BiasGradients_EqualTheFullFineTuningBiasGradients(bool dora)
    {
        // At init the adapter is a no-op (B = 0; DoRA m = ‖W‖), so the model is the base model and its bias
        // gradients must be exactly those of dense full fine-tuning.
        using var pm = Qwen(out var c, 4);
        pm.AddAdapter("default", Cfg("all", "q_proj", "v_proj") with { UseDora = dora });
        var b = Batch(c.VocabSize, 10, 3);
        using (var pass = Passes.Model(pm, 1, 10, recompute: false)) pass.ForwardBackward(b.ids, b.pos, b.seg, b.tgt, 1f);
        var got = pm.TrainableParameters().Where(p => p.Name.EndsWith(".bias")).ToDictionary(p => p.Name, p => p.Grad.Floats.ToArray());

        using var full = TinyModels.Build(c, TinyModels.Weights(c, 4));
        full.MakeFullyTrainable();
        using (var pass = Passes.Model(full, 1, 10, recompute: false)) pass.ForwardBackward(b.ids, b.pos, b.seg, b.tgt, 1f);
        var want = full.TrainableParameters().Where(p => p.Name.EndsWith(".bias")).ToDictionary(p => p.Name, p => p.Grad.Floats.ToArray());

        Assert.Equal(want.Keys.OrderBy(k => k), got.Keys.OrderBy(k => k));
        foreach (var (name, g) in got)
            Numerics.AssertClose(g, want[name].Select(x => (double)x).ToArray(), 1e-4, name);
    }

    [Theory]
    [InlineData(false, 0f)]
    [InlineData(true, 0f)]
    [InlineData(true, 0.3f)]
    [InlineData(false, 0.3f)]
    public void LayerBiasGradient_MatchesFiniteDifferences_WithDoraRescalingAndDropout(bool dora, float dropout)
    {
        // DoRA: y = b + f⊙(…) with f ≠ 1 (trained m, B ≠ 0): the bias gradient is Σ_rows dy, not Σ f⊙dy.
        const int In = 10, Out = 8, R = 3, N = 5;
        var rng = new Random(dora ? 11 : 12);
        var w = new Tensor(DType.F32, Out, In);
        Numerics.RandomFloats(rng, Out * In, 0.4f).CopyTo(w.Floats);
        var bias = new Tensor(DType.F32, Out);
        Numerics.RandomFloats(rng, Out, 0.5f).CopyTo(bias.Floats);
        using var lin = new Linear("model.layers.0.self_attn.q_proj", w, bias);
        var lora = new LoraLinear(lin, 0);
        var ad = new LoraAdapter(lin.Name, In, Out, R, 6f, false, dropout, dora);
        Numerics.RandomFloats(rng, R * In, 0.5f).CopyTo(ad.A.Value.Floats);
        Numerics.RandomFloats(rng, Out * R, 0.5f).CopyTo(ad.B.Value.Floats);
        lora.Add("default", ad);
        if (dora)
        {
            lora.InitializeVariant(TestCompute.Cpu, "default");
            var m = ad.Magnitude!.Value.Floats;
            for (int i = 0; i < Out; i++) m[i] *= 1.5f + 0.1f * i;
        }
        var bp = lin.MakeBiasTrainable()!;
        var x = Numerics.RandomFloats(rng, N * In);
        var g = Numerics.RandomFloats(rng, N * Out);   // dL/dy for L = Σ g⊙y
        var y = new float[N * Out];
        var dx = new float[N * In];
        fixed (float* xp = x, yp = y, gp = g, dxp = dx)
        {
            lora.Forward(Pass, xp, yp, N);
            lora.Backward(Pass, gp, xp, dxp, N);
        }
        double Loss()
        {
            var yy = new float[N * Out];
            fixed (float* xp = x, yp = yy) lora.Forward(Pass, xp, yp, N);   // same dropout key
            double s = 0;
            for (int i = 0; i < yy.Length; i++) s += (double)g[i] * yy[i];
            return s;
        }
        var fd = new double[Out];
        const float eps = 1e-2f;
        var bv = bp.Value.Floats;
        for (int k = 0; k < Out; k++)
        {
            float keep = bv[k];
            bv[k] = keep + eps; double lp = Loss();
            bv[k] = keep - eps; double lm = Loss();
            bv[k] = keep;
            fd[k] = (lp - lm) / (2 * eps);
        }
        Numerics.AssertClose(bp.Grad.Floats, fd, 1e-3, "bias gradient vs finite differences");
        lora.Dispose();
    }

    static float[] Logits(CausalLM m, int[] ids)
    {
        var all = new float[ids.Length * m.Config.VocabSize];
        using var s = Passes.Session(m, ids.Length);
        s.Feed(ids, Span<float>.Empty, all);
        return all;
    }

    [Theory]
    [InlineData("all")]
    [InlineData("lora_only")]
    public void SaveLoad_UsesPeftBiasKeys_AndRestoresTheBiases(string mode)
    {
        using var pm = Qwen(out var c);
        pm.AddAdapter("default", Cfg(mode, "q_proj"));
        var rng = new Random(5);
        foreach (var p in pm.TrainableParameters())
        {
            var v = p.Value.Floats;
            for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * 0.3f;   // "trained" A, B, biases
        }
        int[] ids = [1, 4, 9, 16, 25, 36];
        var expected = Logits(pm.Model, ids);
        var dir = TinyRun.Temp("bias");
        pm.Save(dir);

        Assert.Equal(mode, (string)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json")))!["bias"]!);
        List<string> keys;
        using (var st = SafetensorsFile.Open(Path.Combine(dir, "adapter_model.safetensors")))
            keys = st.Entries.Select(e => e.Name).Where(n => n.EndsWith("bias")).OrderBy(n => n).ToList();
        var want = new List<string>();
        for (int i = 0; i < c.NumLayers; i++)
        {
            want.Add($"base_model.model.model.layers.{i}.self_attn.q_proj.base_layer.bias");   // targeted: on the base layer
            if (mode == "all")
            {
                want.Add($"base_model.model.model.layers.{i}.self_attn.k_proj.bias");
                want.Add($"base_model.model.model.layers.{i}.self_attn.v_proj.bias");
            }
        }
        Assert.Equal(want.OrderBy(n => n), keys);

        using var fresh = Qwen(out _);
        Assert.NotEqual(expected, Logits(fresh.Model, ids));
        var report = fresh.LoadAdapter(dir);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        Assert.Equal(expected, Logits(fresh.Model, ids));
        Assert.Empty(fresh.TrainableParameters());           // loaded for inference: biases frozen too
        fresh.SetTrainable("default", true);
        Assert.Equal(want.Count, fresh.TrainableParameters().Count(p => p.Name.EndsWith(".bias")));
    }
}
