using PeftSharp.Export;
using PeftSharp.Inference;
using PeftSharp.IO.Gguf;
using PeftSharp.Kernels;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Tests.TestSupport;
using Xunit.Abstractions;

namespace PeftSharp.Tests.Gguf;

/// <summary>
/// phi3 GGUF exports (fused attn_qkv and gate|up ffn_up, LongRoPE factor tensors) run in llama.cpp give PeftSharp's
/// logits; adapters on the fused modules apply in llama.cpp; merged and 4-bit bases export; the two places where
/// llama.cpp computes otherwise (LongRoPE chosen by context size, sliding window disabled) are shown as they are.
/// </summary>
public class Phi3GgufTests(ITestOutputHelper output)
{
    // original_max_position_embeddings of the LongRoPE config (max_position_embeddings 4 × that). Not smaller: a
    // llama.cpp context of 64 with an original length of 64 ran with the long factors, so the bundled llama.cpp does
    // not keep a context that small; 256 is its default here and stays 256.
    const int Original = 256, MaxPositions = 4 * Original;

    static readonly double[] ShortFactors = [1.0, 1.05, 1.1, 1.2, 1.3, 1.5, 1.7, 2.0];
    static readonly double[] LongFactors = [1.5, 2.5, 4.0, 6.0, 9.0, 14.0, 20.0, 32.0];

    static ModelConfig Config(bool tied = false, RopeScaling? rope = null) => GgufTestModels.Config("phi3", 2048, tied) with { RopeScaling = rope };

    static RopeScaling LongRope() => RopeScaling.LongRope(ShortFactors, LongFactors, Original, (double)MaxPositions / Original);

    static int[] Ids(int n) => Enumerable.Range(0, n).Select(i => (int)((3 + 7919L * i) % 2048)).ToArray();

    static float[][] Ours(CausalLM m, int[] ids) => GgufLlamaCppAdapterTests.Rows(Passes.Logits(m, ids), ids.Length, m.Config.VocabSize);

    /// <summary>Runs <paramref name="body"/> on a tiny phi3 folder with the default model's tokenizer, then deletes it.</summary>
    static void WithFolder(ModelConfig c, Action<string> body)
    {
        var dir = GgufTestModels.Folder(c, GgufTestModels.DefaultModel);
        try { body(dir); }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData(false, "none")]
    [InlineData(true, "none")]
    [InlineData(false, "linear")]
    public void F32_export_matches_llama_cpp(bool tied, string rope)
    {
        var c = Config(tied, rope == "linear" ? new RopeScaling("linear", Factor: 2) : null);
        WithFolder(c, dir =>
        {
            var gguf = Path.Combine(dir, "model.gguf");
            using var model = CausalLM.Load(dir);
            GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgmlType.F32);
            using (var f = GgufFile.Open(gguf))
            {
                Assert.Equal("phi3", f.Metadata.GetString("general.architecture"));
                Assert.Equal([64L, 128L], f.Tensor("blk.0.attn_qkv.weight").Dims);   // q | k | v rows: 64 + 32 + 32
                Assert.Equal([64L, 192L], f.Tensor("blk.0.ffn_up.weight").Dims);     // gate | up rows: 2 × 96
                Assert.False(f.Contains("blk.0.attn_q.weight") || f.Contains("blk.0.ffn_gate.weight"));
            }
            var ids = Ids(24);
            double err = GgufTestModels.RelativeError(LlamaCpp.Logits(gguf, ids), Ours(model, ids));
            output.WriteLine($"phi3 tied={tied} rope={rope}: relative error {err:E2}");
            Assert.True(err < 1e-4, $"phi3: llama.cpp vs PeftSharp relative logit error {err:E2}");
        });
    }

    /// <summary>LongRoPE in both regimes. llama.cpp picks the long factors when its context size exceeds the original
    /// length, transformers (and PeftSharp) when the sequence does: with a context of <see cref="Original"/> and a
    /// shorter sequence both use the short set; with twice that context and a longer sequence both use the long set; with
    /// that context and a short sequence llama.cpp still uses the long set, which PeftSharp uses for those positions
    /// only inside a longer sequence (causal attention makes the first positions of the longer forward comparable).</summary>
    [Fact]
    public void LongRope_short_and_long_factor_regimes_match_llama_cpp()
    {
        var c = Config(rope: LongRope()) with { MaxPositions = MaxPositions };
        WithFolder(c, dir =>
        {
            var gguf = Path.Combine(dir, "model.gguf");
            using var model = CausalLM.Load(dir);
            Assert.Equal(c.RopeScaling, model.Config.RopeScaling);
            var report = GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgmlType.F32);
            Assert.Contains(report.Notes, n => n.Contains("LongRoPE") && n.Contains($"-c {Original}"));
            using (var f = GgufFile.Open(gguf))
            {
                Assert.Equal(Original, f.Metadata.GetInt("phi3.rope.scaling.original_context_length"));
                Assert.Equal(MaxPositions, f.Metadata.GetInt("phi3.context_length"));
                Assert.Equal(Math.Sqrt(1 + Math.Log(4) / Math.Log(Original)), f.Metadata.GetFloat("phi3.rope.scaling.attn_factor")!.Value, 6);   // stored as float32
                Assert.Equal([8L], f.Tensor(GgufPhi3.LongFactors).Dims);
                Assert.Equal([8L], f.Tensor(GgufPhi3.ShortFactors).Dims);
            }
            var shortIds = Ids(24);
            var longIds = Ids(Original + 40);
            var oursShort = Ours(model, shortIds);
            var oursLong = Ours(model, longIds);
            var oursLongPrefix = oursLong[..shortIds.Length];

            double shortRegime = GgufTestModels.RelativeError(LlamaCpp.Logits(gguf, shortIds, contextSize: Original), oursShort);
            double longRegime = GgufTestModels.RelativeError(LlamaCpp.Logits(gguf, longIds, contextSize: 2 * Original), oursLong);
            var bigContextShortSeq = LlamaCpp.Logits(gguf, shortIds, contextSize: 2 * Original);
            double asLong = GgufTestModels.RelativeError(bigContextShortSeq, oursLongPrefix);
            double asShort = GgufTestModels.RelativeError(bigContextShortSeq, oursShort);
            double regimes = GgufTestModels.RelativeError(oursLongPrefix, oursShort);
            output.WriteLine($"short regime {shortRegime:E2}, long regime {longRegime:E2}; context {2 * Original} + 24 tokens: vs long {asLong:E2}, " +
                             $"vs short {asShort:E2}; PeftSharp short vs long factors {regimes:E2}");
            Assert.True(regimes > 1e-2, $"the two factor sets change the logits by only {regimes:E2}; the test could not tell them apart");
            Assert.True(shortRegime < 1e-4, $"short factors: llama.cpp vs PeftSharp {shortRegime:E2}");
            Assert.True(longRegime < 1e-4, $"long factors: llama.cpp vs PeftSharp {longRegime:E2}");
            Assert.True(asLong < 1e-4, $"context {2 * Original}, 24 tokens: llama.cpp should use the long factors ({asLong:E2})");
            Assert.True(asShort > 10 * asLong, $"context {2 * Original}, 24 tokens: llama.cpp should differ from PeftSharp's short factors ({asShort:E2})");
        });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // LongRoPE base: the adapter's effect under the long factors too
    public void Lora_adapter_on_the_fused_modules_in_llama_cpp_matches_the_peft_adapter(bool longRope)
    {
        var c = Config(rope: longRope ? LongRope() : null) with { MaxPositions = longRope ? MaxPositions : 256 };
        WithFolder(c, dir =>
        {
            string baseGguf = Path.Combine(dir, "base.gguf"), adapterGguf = Path.Combine(dir, "adapter.gguf");
            using var model = CausalLM.Load(dir);
            GgufModelExporter.Export(model, TestCompute.Cpu, dir, baseGguf, GgmlType.F32);
            var config = new LoraConfig
            {
                R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear",
                RankPattern = [new("qkv_proj", 8)], AlphaPattern = [new("gate_up_proj", 3.0)],   // folded into B
            };
            using var pm = GgufLlamaCppAdapterTests.WithAdapter(model, config);
            Assert.Equal(4 * c.NumLayers, pm.LoraModules.Count());   // qkv_proj, o_proj, gate_up_proj, down_proj
            GgufAdapterExporter.Export(GgufAdapterExporter.LoraFactorsOf(pm, "default"), c, adapterGguf);
            using (var f = GgufFile.Open(adapterGguf))
            {
                Assert.Equal("phi3", f.Metadata.GetString("general.architecture"));
                Assert.Equal([8L, 128L], f.Tensor("blk.0.attn_qkv.weight.lora_b").Dims);
                Assert.Equal([4L, 192L], f.Tensor("blk.0.ffn_up.weight.lora_b").Dims);
            }
            var ids = longRope ? Ids(Original + 40) : GgufLlamaCppAdapterTests.Ids(2048);   // long factors in both engines
            var ours = GgufLlamaCppAdapterTests.Rows(Passes.Logits(pm, ids), ids.Length, c.VocabSize);
            uint context = longRope ? 2 * Original : 256u;
            var theirs = LlamaCpp.Logits(baseGguf, ids, adapterGguf, contextSize: context);
            double err = GgufTestModels.RelativeError(theirs, ours);
            double effect = GgufTestModels.RelativeError(LlamaCpp.Logits(baseGguf, ids, contextSize: context), ours);
            output.WriteLine($"phi3 longrope={longRope}: adapter vs PEFT {err:E2}, base vs PEFT {effect:E2}");
            Assert.True(effect > 1e-2, $"the adapter changes the logits by only {effect:E2}; the test would not see a wrong adapter");
            Assert.True(err < 1e-4, $"llama.cpp + GGUF adapter vs PeftSharp + PEFT adapter: relative logit error {err:E2}");
            if (!longRope)
            {
                var prompt = ids[..6];
                Assert.Equal(Passes.Generate(pm, prompt, 12, SamplingOptions.Greedy, []).ToArray(), LlamaCpp.Greedy(baseGguf, prompt, 12, adapterGguf));
            }
        });
    }

    /// <summary>`peft export gguf` on a phi3 folder and a saved PEFT adapter (qkv_proj … down_proj) end to end.</summary>
    [Fact]
    public void Command_exports_a_saved_phi3_adapter_that_llama_cpp_applies()
    {
        var c = Config();
        WithFolder(c, dir =>
        {
            string adapterDir = Path.Combine(dir, "adapter"), baseGguf = Path.Combine(dir, "base.gguf"), adapterGguf = Path.Combine(dir, "adapter.gguf");
            using (var model = CausalLM.Load(dir))
            using (var trained = GgufLlamaCppAdapterTests.WithAdapter(model, new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = ["qkv_proj", "gate_up_proj"] }))
                trained.Save(adapterDir);
            int Run(params string[] args) => new PeftSharp.Cli.Commands.ExportCommand().Build().Parse(args).Invoke();
            Assert.Equal(0, Run("gguf", dir, "--out", baseGguf, "--type", "f32", "--threads", "1"));
            Assert.Equal(0, Run("gguf", dir, "--adapter", adapterDir, "--out", adapterGguf, "--threads", "1"));
            using var reloaded = CausalLM.Load(dir);
            using var pm = new PeftModel(reloaded, TestCompute.Cpu);
            pm.LoadAdapter(adapterDir);
            var ids = GgufLlamaCppAdapterTests.Ids(2048);
            var ours = GgufLlamaCppAdapterTests.Rows(Passes.Logits(pm, ids), ids.Length, c.VocabSize);
            double err = GgufTestModels.RelativeError(LlamaCpp.Logits(baseGguf, ids, adapterGguf), ours);
            double effect = GgufTestModels.RelativeError(LlamaCpp.Logits(baseGguf, ids), ours);
            output.WriteLine($"CLI phi3 adapter: {err:E2} (adapter effect {effect:E2})");
            Assert.True(effect > 1e-2 && err < 1e-4, $"CLI-exported phi3 adapter: {err:E2}, effect {effect:E2}");
            using var f = GgufFile.Open(adapterGguf);
            Assert.Equal(2 * c.NumLayers * 2, f.Tensors.Count);   // lora_a and lora_b of qkv_proj and gate_up_proj per layer
        });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Merged_export_matches_the_adapter_model(bool dora)
    {
        var c = Config();
        WithFolder(c, dir =>
        {
            string merged = Path.Combine(dir, "merged.gguf");
            using var model = CausalLM.Load(dir);
            using var pm = GgufLlamaCppAdapterTests.WithAdapter(model, new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", UseDora = dora });
            GgufModelExporter.Export(model, TestCompute.Cpu, dir, merged, GgmlType.F32, mergeAdapter: "default");
            var ids = GgufLlamaCppAdapterTests.Ids(2048);
            var ours = GgufLlamaCppAdapterTests.Rows(Passes.Logits(pm, ids), ids.Length, c.VocabSize);
            double err = GgufTestModels.RelativeError(LlamaCpp.Logits(merged, ids), ours);
            double effect = GgufTestModels.RelativeError(Ours(model, ids), ours);
            output.WriteLine($"phi3 dora={dora}: merged export vs PEFT adapter {err:E2} (adapter effect {effect:E2})");
            Assert.True(effect > 1e-2, $"the adapter changes the logits by only {effect:E2}");
            Assert.True(err < 1e-4, $"merged export vs unmerged adapter: {err:E2}");
        });
    }

    [Fact]
    public void Dora_as_full_rank_lora_in_llama_cpp_matches_dora()
    {
        var c = Config();
        WithFolder(c, dir =>
        {
            string baseGguf = Path.Combine(dir, "base.gguf"), loraGguf = Path.Combine(dir, "as-lora.gguf");
            using var model = CausalLM.Load(dir);
            GgufModelExporter.Export(model, TestCompute.Cpu, dir, baseGguf, GgmlType.F32);
            using var pm = GgufLlamaCppAdapterTests.WithAdapter(model, new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", UseDora = true });
            var approx = DoraAsLora.Approximate(pm, "default", 64);   // full rank of every module (min(out, in) = 64)
            GgufAdapterExporter.Export(approx.Factors, c, loraGguf);
            var ids = GgufLlamaCppAdapterTests.Ids(2048);
            double err = GgufTestModels.RelativeError(LlamaCpp.Logits(baseGguf, ids, loraGguf), GgufLlamaCppAdapterTests.Rows(Passes.Logits(pm, ids), ids.Length, c.VocabSize));
            output.WriteLine($"phi3 DoRA as rank-64 LoRA in llama.cpp vs DoRA: {err:E2}");
            Assert.True(err < 1e-4, $"full-rank LoRA of the DoRA update: {err:E2}");
        });
    }

    [Fact]
    public void Nf4_base_is_dequantized_and_matches_llama_cpp()
    {
        var c = Config();
        WithFolder(c, dir =>
        {
            var gguf = Path.Combine(dir, "from-4bit.gguf");
            using var model = CausalLM.Load(dir, new PeftSharp.Quantization.QuantizeOptions(PeftSharp.Quantization.Quant4Type.NF4, false, 64), TestCompute.Cpu);
            var report = GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgmlType.F32);
            Assert.Contains(report.Notes, n => n.Contains("dequantized to F32"));
            var ids = GgufLlamaCppAdapterTests.Ids(2048);
            double err = GgufTestModels.RelativeError(LlamaCpp.Logits(gguf, ids), Ours(model, ids));
            output.WriteLine($"phi3 NF4 base → F32 GGUF: {err:E2}");
            Assert.True(err < 1e-4, $"NF4 base exported as F32: {err:E2}");
        });
    }

    /// <summary>llama.cpp disables Phi-3's sliding window on load: it computes the model without its window, and the
    /// export says so.</summary>
    [Fact]
    public void Llama_cpp_runs_phi3_without_its_sliding_window_and_the_export_says_so()
    {
        var c = Config() with { SlidingWindow = 8 };
        WithFolder(c, dir =>
        {
            var gguf = Path.Combine(dir, "model.gguf");
            using var model = CausalLM.Load(dir);
            var report = GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgmlType.F32);
            Assert.Contains(report.Notes, n => n.Contains("sliding window (8 tokens)"));
            using (var f = GgufFile.Open(gguf)) Assert.Equal(8, f.Metadata.GetInt("phi3.attention.sliding_window"));
            var ids = Ids(24);
            var theirs = LlamaCpp.Logits(gguf, ids);
            using var ckpt = PeftSharp.IO.SafetensorsCheckpoint.OpenDirectory(dir);
            using var noWindow = CausalLM.FromTensors(c with { SlidingWindow = null }, n => ckpt.Contains(n) ? ckpt.Get(n) : null, dir);
            double full = GgufTestModels.RelativeError(theirs, Ours(noWindow, ids)), windowed = GgufTestModels.RelativeError(theirs, Ours(model, ids));
            double prefix = GgufTestModels.RelativeError(theirs[..8], Ours(model, ids)[..8]);
            output.WriteLine($"llama.cpp vs PeftSharp without the window {full:E2}, with it {windowed:E2}, first 8 positions {prefix:E2}");
            Assert.True(full < 1e-4, $"llama.cpp vs the model without its window: {full:E2}");
            Assert.True(prefix < 1e-4, $"within the window both agree: {prefix:E2}");
            Assert.True(windowed > 1e-2, $"beyond the window llama.cpp differs from the windowed model by only {windowed:E2}");
        });
    }

    /// <summary>PeftSharp reads its phi3 export back: the same config (LongRoPE from the factor tensors, the window) and
    /// bit-identical logits, with factors and attention factor that float32 holds exactly.</summary>
    [Fact]
    public void F32_phi3_export_reads_back_as_the_same_model()
    {
        var rope = RopeScaling.LongRope([1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0], [2.0, 3.0, 4.5, 6.0, 8.0, 12.0, 16.0, 24.0], 64, 4, 1.125);
        var c = Config(rope: rope) with { SlidingWindow = 16 };
        WithFolder(c, dir =>
        {
            var gguf = Path.Combine(dir, "model.gguf");
            using var model = CausalLM.Load(dir);
            GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgmlType.F32);
            using var imported = CausalLM.Load(gguf);
            Assert.Equal(c with { BosTokenId = imported.Config.BosTokenId, EosTokenIds = imported.Config.EosTokenIds }, imported.Config);
            foreach (int n in new[] { 24, 80 })   // short and long factors
                Assert.Equal(Passes.Logits(model, Ids(n)), Passes.Logits(imported, Ids(n)));
        });
    }

    [Fact]
    public void A_phi3_file_with_one_longrope_factor_tensor_is_refused_by_name()
    {
        var c = Config(rope: LongRope());
        WithFolder(c, dir =>
        {
            string gguf = Path.Combine(dir, "model.gguf"), broken = Path.Combine(dir, "broken.gguf");
            using (var model = CausalLM.Load(dir)) GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgmlType.F32);
            using (var f = GgufFile.Open(gguf))
            {
                var kept = f.Tensors.Where(t => t.Name != GgufPhi3.ShortFactors).Select(t => new GgufTensorSource(t.Name, t.Type, t.RowMajorShape, t.ByteLength, s =>
                {
                    var bytes = new byte[t.ByteLength];
                    f.ReadBytes(t, bytes);
                    s.Write(bytes);
                })).ToList();
                GgufWriter.Write(broken, f.Metadata, kept);
            }
            var e = Assert.Throws<PeftException>(() => CausalLM.Load(broken));
            Assert.Contains(GgufPhi3.ShortFactors, e.Message);
            Assert.Contains("broken.gguf", e.Message);
        });
    }

    /// <summary>The published configs' keys as convert_hf_to_gguf's Phi3MiniModel writes them: Phi-3.5-mini's LongRoPE
    /// (48 + 48 factors, original 4096, attn_factor √(1 + ln 32 / ln 4096) = √(17/12)), Phi-3-mini-4k without scaling.</summary>
    [Theory]
    [InlineData("phi-3.5-mini-instruct.json", 131072, 262144, true)]
    [InlineData("phi-3-mini-4k-instruct.json", 4096, 2047, false)]
    public void Published_configs_give_the_converter_keys(string file, int context, int window, bool longRope)
    {
        var c = ModelConfig.Load(PeftSharp.Tests.IO.IoTestPaths.ModelConfig(file));
        var m = new GgufMetadata(file);
        GgufArchitecture.WriteHyperParameters(m, c);
        Assert.Equal("phi3", m.GetString("general.architecture"));
        Assert.Equal(context, m.GetInt("phi3.context_length"));
        Assert.Equal(4096, m.GetInt("phi3.rope.scaling.original_context_length"));
        Assert.Equal(96, m.GetInt("phi3.rope.dimension_count"));
        Assert.Equal(window, m.GetInt("phi3.attention.sliding_window"));
        Assert.Null(m.GetString("phi3.rope.scaling.type"));
        var factors = GgufPhi3.RopeFactorTensors(c).ToDictionary(t => t.Name, t => t.Values);
        var notes = GgufPhi3.Notes(c).ToList();
        Assert.Equal(longRope, notes.Any(n => n.StartsWith("LongRoPE") && n.Contains("exceeds 4096")));
        Assert.Equal(window < context, notes.Any(n => n.Contains($"sliding window ({window} tokens)")));   // Phi-3.5's never binds
        if (longRope)
        {
            Assert.Equal(Math.Sqrt(17.0 / 12), m.GetFloat("phi3.rope.scaling.attn_factor")!.Value, 6);
            Assert.Equal(48, factors[GgufPhi3.ShortFactors].Length);
            Assert.Equal(c.RopeScaling!.LongFactor!.Select(f => (float)f), factors[GgufPhi3.LongFactors]);
        }
        else
        {
            Assert.Null(m.GetFloat("phi3.rope.scaling.attn_factor"));
            Assert.Empty(factors);
        }
    }

    [Fact]
    public void Configs_llama_cpp_cannot_represent_are_refused_by_key()
    {
        foreach (var (c, what) in new[]
                 {
                     (Config() with { HeadDim = 32 }, "\"head_dim\""),
                     (Config(rope: new RopeScaling("llama3", 8, 1, 4, 64)), "\"rope_scaling\" type llama3"),
                 })
        {
            var w = TinyModels.Weights(c, 1);
            try
            {
                using var m = TinyModels.Build(c, w);
                var path = Path.Combine(Path.GetTempPath(), "peftsharp-phi3-refused-" + Guid.NewGuid().ToString("N")[..8] + ".gguf");
                var e = Assert.Throws<PeftException>(() => GgufModelExporter.Export(m, TestCompute.Cpu, GgufTestModels.DefaultModel, path, GgmlType.F32));
                output.WriteLine(e.Message);
                Assert.Contains(what, e.Message);
                Assert.False(File.Exists(path));
            }
            finally { foreach (var t in w.Values) t.Dispose(); }
        }
    }
}
