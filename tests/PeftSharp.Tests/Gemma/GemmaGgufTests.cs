using PeftSharp.Export;
using PeftSharp.IO.Gguf;
using PeftSharp.Models;
using PeftSharp.Tests.Gguf;
using PeftSharp.Tests.TestSupport;
using Xunit.Abstractions;

namespace PeftSharp.Tests.Gemma;

/// <summary>gemma2 / gemma3 GGUF exports run in llama.cpp (LLamaSharp's CPU backend) give PeftSharp's logits; configs
/// llama.cpp would compute differently are refused.</summary>
public class GemmaGgufTests(ITestOutputHelper output)
{
    /// <summary>What llama.cpp can express: its attention scale 1/√head_dim, gemma3's local base 10000 and 5:1 pattern.</summary>
    static ModelConfig Config(string type)
    {
        var c = GgufTestModels.Config(type, 2048, tied: true) with { QueryPreAttnScalar = 16, SlidingWindow = 5 };
        return type == "gemma3_text" ? c with { NumLayers = 6, SlidingWindowPattern = 6, RopeLocalTheta = 10000 } : c;
    }

    /// <summary>A tiny model of <paramref name="type"/> in a temp folder, exported there as F32 GGUF, given to
    /// <paramref name="check"/> (config, folder, model, GGUF path); the folder is removed afterwards.</summary>
    static void WithF32Export(string type, Action<ModelConfig, string, CausalLM, string> check)
    {
        var c = Config(type);
        var dir = GgufTestModels.Folder(c, GgufTestModels.DefaultModel);
        var gguf = Path.Combine(dir, "model.gguf");
        try
        {
            using var model = CausalLM.Load(dir);
            GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgmlType.F32);
            check(c, dir, model, gguf);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3_text")]
    public void F32_export_matches_llama_cpp(string type) => WithF32Export(type, (c, dir, model, gguf) =>
        {
            var ids = Enumerable.Range(0, 24).Select(i => (int)((3 + 7919L * i) % c.VocabSize)).ToArray();   // longer than the window
            var flat = Passes.Logits(model, ids);
            var ours = Enumerable.Range(0, ids.Length).Select(i => flat.AsSpan(i * c.VocabSize, c.VocabSize).ToArray()).ToArray();
            var theirs = LlamaCpp.Logits(gguf, ids);
            double err = GgufTestModels.RelativeError(theirs, ours);
            output.WriteLine($"{type}: relative error {err:E2}");
            // ggml's CPU GELU reads a float16 table (GGML_GELU_FP16, on by default), ~1e-3 relative per activation: the bound is
            // looser than the SwiGLU models' 1e-4, and the same weights with the window off must be far outside it.
            Assert.True(err < 2e-3, $"{type}: llama.cpp vs PeftSharp relative logit error {err:E2}");
            using (var ckpt = PeftSharp.IO.SafetensorsCheckpoint.OpenDirectory(dir))
            using (var noWindow = CausalLM.FromTensors(c with { SlidingWindow = null }, n => ckpt.Contains(n) ? ckpt.Get(n) : null, dir))
            {
                var flat2 = Passes.Logits(noWindow, ids);
                var other = Enumerable.Range(0, ids.Length).Select(i => flat2.AsSpan(i * c.VocabSize, c.VocabSize).ToArray()).ToArray();
                double off = GgufTestModels.RelativeError(theirs, other);
                output.WriteLine($"{type}: relative error against the model without its window {off:E2}");
                Assert.True(off > 10 * err && off > 2e-3, $"{type}: the comparison cannot tell the window ({off:E2} vs {err:E2})");
            }
        });

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3_text")]
    public void Lora_adapter_as_gguf_in_llama_cpp_matches_the_peft_adapter(string type)
    {
        var c = Config(type);
        var dir = GgufTestModels.Folder(c, GgufTestModels.DefaultModel);
        string baseGguf = Path.Combine(dir, "base.gguf"), adapterGguf = Path.Combine(dir, "adapter.gguf");
        try
        {
            using var model = CausalLM.Load(dir);
            GgufModelExporter.Export(model, TestCompute.Cpu, dir, baseGguf, GgmlType.F32);
            using var pm = GgufLlamaCppAdapterTests.WithAdapter(model, new PeftSharp.Peft.LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear" });
            GgufAdapterExporter.Export(GgufAdapterExporter.LoraFactorsOf(pm, "default"), c, adapterGguf);
            var ids = Enumerable.Range(0, 20).Select(i => (int)((5 + 7919L * i) % c.VocabSize)).ToArray();
            var ours = GgufLlamaCppAdapterTests.Rows(Passes.Logits(pm, ids), ids.Length, c.VocabSize);
            var theirs = LlamaCpp.Logits(baseGguf, ids, adapterGguf);
            var baseOnly = LlamaCpp.Logits(baseGguf, ids);
            double err = GgufTestModels.RelativeError(theirs, ours), effect = GgufTestModels.RelativeError(baseOnly, ours);
            output.WriteLine($"{type}: adapter vs PEFT {err:E2}, base vs PEFT {effect:E2}");
            Assert.True(effect > 10 * err && effect > 1e-2, $"the adapter changes the logits by only {effect:E2}");
            Assert.True(err < 2e-3, $"{type}: llama.cpp + GGUF adapter vs PeftSharp + PEFT adapter: relative logit error {err:E2}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Configs_llama_cpp_would_compute_differently_are_refused()
    {
        foreach (var (c, what) in new[]
                 {
                     (Config("gemma2") with { QueryPreAttnScalar = 6 }, "query_pre_attn_scalar"),
                     (Config("gemma2") with { FinalLogitSoftcapping = null }, "soft caps"),
                     (Config("gemma3_text") with { RopeLocalTheta = 100 }, "rope_local_base_freq"),
                     (Config("gemma3_text") with { SlidingWindowPattern = 2 }, "pattern"),
                 })
        {
            var w = TinyModels.Weights(c, 1);
            using var m = TinyModels.Build(c, w);
            var path = Path.Combine(Path.GetTempPath(), "peftsharp-gemma-refused-" + Guid.NewGuid().ToString("N")[..8] + ".gguf");
            var e = Assert.Throws<PeftException>(() => GgufModelExporter.Export(m, TestCompute.Cpu, GgufTestModels.DefaultModel, path, GgmlType.F32));
            Assert.Contains(what, e.Message);
            Assert.False(File.Exists(path));
            foreach (var t in w.Values) t.Dispose();
        }
    }

    /// <summary>A gemma GGUF is a model input: the config comes back as llama.cpp runs the file, the 1 + w norms as w
    /// (float32 rounding of (1 + w) − 1 is the only difference), and the logits are the exported model's.</summary>
    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3_text")]
    public void F32_gemma_export_reads_back_as_the_same_model(string type) => WithF32Export(type, (c, _, model, gguf) =>
        {
            using var imported = CausalLM.Load(gguf);
            var expected = model.Config with { BosTokenId = imported.Config.BosTokenId, EosTokenIds = imported.Config.EosTokenIds };
            Assert.Equal(expected, imported.Config);
            foreach (var (a, b) in model.Layers.Zip(imported.Layers))
                foreach (var (na, nb) in a.Norms().Zip(b.Norms()))
                {
                    Assert.Equal(na.Weight.Name, nb.Weight.Name);
                    var (x, y) = (na.Values.ToArray(), nb.Values.ToArray());
                    for (int i = 0; i < x.Length; i++) Assert.True(Math.Abs(x[i] - y[i]) <= 1e-7f, $"{na.Weight.Name}[{i}]: {y[i]} vs {x[i]}");
                }
            var ids = Enumerable.Range(0, 24).Select(i => (int)((3 + 7919L * i) % c.VocabSize)).ToArray();
            var want = Passes.Logits(model, ids);
            var got = Passes.Logits(imported, ids);
            double err = Numerics.RelativeError(got, want.Select(x => (double)x).ToArray());
            output.WriteLine($"{type}: read-back logits vs the exported model {err:E2}");
            Assert.True(err < 1e-5, $"{type}: read-back logits differ by {err:E2}");
        });

    [Theory]
    [InlineData(46, 4608, 32, 128, 144.0)]   // gemma-2-27b's sizes: llama.cpp scales by 1/√(hidden / heads)
    [InlineData(26, 2304, 8, 256, 256.0)]    // gemma-2-2b: 1/√head_dim
    public void Reading_gemma2_takes_llama_cpps_attention_scale_rule(int layers, int hidden, int heads, int headDim, double scalar)
    {
        var meta = new GgufMetadata("x.gguf");
        var c = new ModelConfig { ModelType = "gemma2", NumLayers = layers, HiddenSize = hidden, NumHeads = heads, HeadDim = headDim, NumKvHeads = heads, IntermediateSize = 4 * hidden, VocabSize = 256 };
        meta.Set("gemma2.final_logit_softcapping", 30f);
        var read = GgufGemma.ReadHyperParameters(meta, "gemma2", c);
        Assert.Equal(scalar, read.QueryPreAttnScalar);
        Assert.Equal(50, read.AttnLogitSoftcapping);   // llama.cpp's default when the key is absent
        Assert.Equal(30, read.FinalLogitSoftcapping);
        Assert.Equal(2, read.SlidingWindowPattern);
        Assert.Null(read.RopeLocalTheta);
    }
}
