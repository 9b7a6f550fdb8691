using PeftSharp.Tests.TestSupport;
using PeftSharp.Export;
using PeftSharp.Inference;
using PeftSharp.IO.Gguf;
using PeftSharp.Models;
using PeftSharp.Peft;
using Xunit.Abstractions;

namespace PeftSharp.Tests.Gguf;

/// <summary>GGUF LoRA adapters applied by llama.cpp reproduce PeftSharp with the PEFT adapter; merged exports too.</summary>
public class GgufLlamaCppAdapterTests(ITestOutputHelper output)
{
    internal static int[] Ids(int vocab, int n = 20) => Enumerable.Range(0, n).Select(i => (int)((5 + 104729L * i) % vocab)).ToArray();

    internal static float[][] Rows(float[] flat, int n, int V) => Enumerable.Range(0, n).Select(i => flat.AsSpan(i * V, V).ToArray()).ToArray();

    /// <summary>A LoRA on every projection with non-zero, seeded A and B (a fresh adapter has B = 0).</summary>
    internal static PeftModel WithAdapter(CausalLM model, LoraConfig config, int seed = 3)
    {
        var pm = new PeftModel(model, TestCompute.Cpu);
        pm.AddAdapter("default", config, (ulong)seed);
        var rng = new Random(seed);
        foreach (var m in pm.LoraModules)
        {
            var ad = m.Adapters["default"];
            foreach (var p in new[] { ad.A, ad.B })
            {
                var f = p.Value.Floats;
                for (int i = 0; i < f.Length; i++) f[i] = (float)(rng.NextDouble() - 0.5) * 0.3f;
            }
            if (ad.Magnitude != null) m.InitializeVariant(TestCompute.Cpu, "default");
            if (ad.Magnitude != null) { var mf = ad.Magnitude.Value.Floats; for (int i = 0; i < mf.Length; i++) mf[i] *= 1 + 0.2f * (float)(rng.NextDouble() - 0.5); }
        }
        return pm;
    }

    static readonly LoraConfig AllLinear = new() { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear" };

    [Theory]
    [InlineData("llama", false, false)]
    [InlineData("mistral", false, false)]
    [InlineData("qwen2", false, false)]
    [InlineData("qwen3", false, false)]
    [InlineData("llama", true, false)]   // rsLoRA: alpha·√r stored so llama.cpp's alpha/r gives alpha/√r
    [InlineData("qwen3", false, true)]   // rank_pattern / alpha_pattern: per-module scale folded into B
    public void GgufAdapterInLlamaCppMatchesPeftAdapter(string type, bool rsLora, bool patterns)
    {
        var c = GgufTestModels.Config(type, 2048);
        var dir = GgufTestModels.Folder(c, GgufTestModels.DefaultModel);
        string baseGguf = Path.Combine(dir, "base.gguf"), adapterGguf = Path.Combine(dir, "adapter.gguf");
        using var model = CausalLM.Load(dir);
        GgufModelExporter.Export(model, TestCompute.Cpu, dir, baseGguf, GgmlType.F32);
        var config = AllLinear with
        {
            UseRsLora = rsLora,
            RankPattern = patterns ? [new("v_proj", 8), new("down_proj", 2)] : [],
            AlphaPattern = patterns ? [new("o_proj", 3.0)] : [],
        };
        using var pm = WithAdapter(model, config);
        float alpha = GgufAdapterExporter.Export(GgufAdapterExporter.LoraFactorsOf(pm, "default"), c, adapterGguf);

        var ids = Ids(c.VocabSize);
        var ours = Rows(Passes.Logits(pm, ids), ids.Length, c.VocabSize);
        var theirs = LlamaCpp.Logits(baseGguf, ids, adapterGguf);
        var baseOnly = LlamaCpp.Logits(baseGguf, ids);
        double err = GgufTestModels.RelativeError(theirs, ours), effect = GgufTestModels.RelativeError(baseOnly, ours);
        output.WriteLine($"{type} rslora={rsLora} patterns={patterns}: alpha {alpha}, adapter vs PEFT {err:E2}, base vs PEFT {effect:E2}");
        Assert.True(effect > 1e-2, $"the adapter changes the logits by only {effect:E2}; the test would not see a wrong adapter");
        Assert.True(err < 1e-4, $"llama.cpp + GGUF adapter vs PeftSharp + PEFT adapter: relative logit error {err:E2}");
        if (rsLora) Assert.Equal(8 * MathF.Sqrt(4), alpha, 5);

        // greedy continuations agree token for token
        var prompt = ids[..6];
        var peftGreedy = Passes.Generate(pm, prompt, 12, SamplingOptions.Greedy, []).ToArray();
        var cppGreedy = LlamaCpp.Greedy(baseGguf, prompt, 12, adapterGguf);
        Assert.Equal(peftGreedy, cppGreedy);
    }

    [Theory]
    [InlineData("llama", false)]
    [InlineData("qwen2", true)]
    public void MergedExportMatchesAdapterModel(string type, bool dora)
    {
        var c = GgufTestModels.Config(type, 2048);
        var dir = GgufTestModels.Folder(c, GgufTestModels.DefaultModel);
        string merged = Path.Combine(dir, "merged.gguf");
        using var model = CausalLM.Load(dir);
        using var pm = WithAdapter(model, AllLinear with { UseDora = dora });
        GgufModelExporter.Export(model, TestCompute.Cpu, dir, merged, GgmlType.F32, mergeAdapter: "default");
        var ids = Ids(c.VocabSize);
        var ours = Rows(Passes.Logits(pm, ids), ids.Length, c.VocabSize);
        double err = GgufTestModels.RelativeError(LlamaCpp.Logits(merged, ids), ours);
        output.WriteLine($"{type} dora={dora}: merged export vs PEFT adapter {err:E2}");
        Assert.True(err < 1e-4, $"merged export vs unmerged adapter: {err:E2}");
    }
}
