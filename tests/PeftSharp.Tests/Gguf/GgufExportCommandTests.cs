using PeftSharp.Tests.TestSupport;
using PeftSharp.Cli.Commands;
using PeftSharp.Export;
using PeftSharp.IO.Gguf;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Templates;
using Xunit.Abstractions;

namespace PeftSharp.Tests.Gguf;

/// <summary>`peft export gguf` end to end, DoRA → LoRA approximation, and the Ollama Modelfile.</summary>
public class GgufExportCommandTests(ITestOutputHelper output)
{
    static int Run(params string[] args) => new ExportCommand().Build().Parse(args).Invoke();

    static (string Dir, string Adapter) FolderWithSavedAdapter(string type, bool dora)
    {
        var c = GgufTestModels.Config(type, 2048);
        var dir = GgufTestModels.Folder(c, GgufTestModels.DefaultModel);
        var adapterDir = Path.Combine(dir, "adapter");
        using var model = CausalLM.Load(dir);
        using var pm = GgufLlamaCppAdapterTests.WithAdapter(model, new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", UseDora = dora });
        pm.Save(adapterDir);
        return (dir, adapterDir);
    }

    static float[][] PeftLogits(string dir, string adapter, int[] ids)
    {
        using var model = CausalLM.Load(dir);
        using var pm = new PeftModel(model, TestCompute.Cpu);
        pm.LoadAdapter(adapter);
        return GgufLlamaCppAdapterTests.Rows(Passes.Logits(pm, ids), ids.Length, model.Config.VocabSize);
    }

    [Fact]
    public void CommandWritesModelAdapterAndModelfileThatLlamaCppRuns()
    {
        var (dir, adapter) = FolderWithSavedAdapter("llama", dora: false);
        string baseGguf = Path.Combine(dir, "base.gguf"), adapterGguf = Path.Combine(dir, "adapter.gguf");
        Assert.Equal(0, Run("gguf", dir, "--out", baseGguf, "--type", "f32", "--threads", "1"));
        Assert.Equal(0, Run("gguf", dir, "--adapter", adapter, "--out", adapterGguf, "--ollama", "--base-gguf", "base.gguf"));
        var ids = GgufLlamaCppAdapterTests.Ids(2048);
        double err = GgufTestModels.RelativeError(LlamaCpp.Logits(baseGguf, ids, adapterGguf), PeftLogits(dir, adapter, ids));
        Assert.True(err < 1e-4, $"CLI-exported adapter: {err:E2}");
        var modelfile = File.ReadAllText(Path.Combine(dir, "Modelfile"));
        Assert.StartsWith("FROM base.gguf\nADAPTER adapter.gguf\n", modelfile);
        using var f = GgufFile.Open(adapterGguf);
        Assert.Equal("adapter", f.Metadata.GetString("general.type"));
        Assert.Equal("lora", f.Metadata.GetString("adapter.type"));
        Assert.Equal("llama", f.Metadata.GetString("general.architecture"));
        Assert.Equal([64L, 4L], f.Tensor("blk.0.attn_q.weight.lora_a").Dims);   // A (r, in): ne0 = in
        Assert.Equal([4L, 64L], f.Tensor("blk.0.attn_q.weight.lora_b").Dims);   // B (out, r): ne0 = r
    }

    [Fact]
    public void DoraAdapterIsRefusedUnlessMergedOrApproximated()
    {
        var (dir, adapter) = FolderWithSavedAdapter("qwen2", dora: true);
        string outPath = Path.Combine(dir, "dora.gguf");
        Assert.Equal(1, Run("gguf", dir, "--adapter", adapter, "--out", outPath));
        Assert.False(File.Exists(outPath));
        Assert.Equal(0, Run("gguf", dir, "--adapter", adapter, "--merge", "--out", Path.Combine(dir, "merged.gguf"), "--type", "f32"));
        var ids = GgufLlamaCppAdapterTests.Ids(2048);
        double err = GgufTestModels.RelativeError(LlamaCpp.Logits(Path.Combine(dir, "merged.gguf"), ids), PeftLogits(dir, adapter, ids));
        Assert.True(err < 1e-4, $"merged DoRA: {err:E2}");
        Assert.Equal(0, Run("gguf", dir, "--adapter", adapter, "--as-lora", "4", "--out", outPath));
        Assert.True(File.Exists(outPath));
    }

    [Fact]
    public void DoraAsLoraErrorFallsWithRankAndVanishesAtFullRank()
    {
        var (dir, adapter) = FolderWithSavedAdapter("llama", dora: true);
        using var model = CausalLM.Load(dir);
        using var pm = new PeftModel(model, TestCompute.Cpu);
        pm.LoadAdapter(adapter);
        var results = new[] { 1, 4, 16, 64 }.Select(r => DoraAsLora.Approximate(pm, "default", r)).ToList();
        foreach (var r in results) output.WriteLine($"rank {r.Rank}: ‖ΔW−ΔW_R‖/‖ΔW‖ {r.RelativeFrobeniusError:E3}, mean KL {r.MeanKl:E3}");
        for (int i = 1; i < results.Count; i++)
        {
            Assert.True(results[i].RelativeFrobeniusError < results[i - 1].RelativeFrobeniusError);
            Assert.True(results[i].MeanKl <= results[i - 1].MeanKl + 1e-9);
        }
        Assert.True(results[^1].RelativeFrobeniusError < 1e-5, $"full rank: {results[^1].RelativeFrobeniusError:E2}");
        Assert.True(results[0].MeanKl > 1e-4, "rank 1 should be visibly worse");

        // the full-rank approximation, applied by llama.cpp, reproduces the DoRA model
        string baseGguf = Path.Combine(dir, "base.gguf"), loraGguf = Path.Combine(dir, "as-lora.gguf");
        using (var plain = CausalLM.Load(dir)) GgufModelExporter.Export(plain, TestCompute.Cpu, dir, baseGguf, GgmlType.F32);
        GgufAdapterExporter.Export(results[^1].Factors, model.Config, loraGguf);
        var ids = GgufLlamaCppAdapterTests.Ids(2048);
        var dora = GgufLlamaCppAdapterTests.Rows(Passes.Logits(pm, ids), ids.Length, 2048);
        double err = GgufTestModels.RelativeError(LlamaCpp.Logits(baseGguf, ids, loraGguf), dora);
        Assert.True(err < 1e-4, $"full-rank LoRA of the DoRA update in llama.cpp vs PeftSharp DoRA: {err:E2}");
    }

    [Theory]
    [InlineData("qwen3", "chatml", "<|im_end|>")]
    [InlineData("llama3", "llama3", "<|eot_id|>")]
    public void ModelfileTemplateFollowsTheChatTemplateFamily(string tokenizer, string family, string stop)
    {
        var chat = ChatTemplateSource.Load(GgufTestModels.NpmTokenizer(tokenizer));
        var mf = OllamaModelfile.Build("model.gguf", null, chat.Source, chat.EosToken);
        Assert.Equal(family, mf.Family);
        Assert.Contains("TEMPLATE \"\"\"", mf.Text);
        Assert.Contains("{{ .Content }}", mf.Text);
        Assert.Contains($"PARAMETER stop \"{stop}\"", mf.Text);
        // the role header the Go template writes for a user turn is the one the Jinja template renders
        string rendered = chat.Render([new ChatMessage("user", "hi")], addGenerationPrompt: true);
        string header = family == "chatml" ? "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
            : "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        Assert.EndsWith(header, rendered);
    }
}

/// <summary>The README's LLamaSharp snippet, as written there, on an exported model and adapter.</summary>
public class ReadmeLlamaSharpSnippetTests
{
    [Fact]
    public void SnippetRunsAndGivesTheHarnessLogits()
    {
        var c = GgufTestModels.Config("llama", 2048);
        var dir = GgufTestModels.Folder(c, GgufTestModels.DefaultModel);
        string modelPath = Path.Combine(dir, "kjv-f16.gguf"), adapterPath = Path.Combine(dir, "kjv-lora.gguf");
        using (var model = CausalLM.Load(dir))
        {
            GgufModelExporter.Export(model, TestCompute.Cpu, dir, modelPath, GgmlType.F16);
            using var pm = GgufLlamaCppAdapterTests.WithAdapter(model, new LoraConfig { R = 4, LoraAlpha = 8 });
            GgufAdapterExporter.Export(GgufAdapterExporter.LoraFactorsOf(pm, "default"), c, adapterPath);
        }
        float[] logits;
        LLama.Native.LLamaToken[] ids;
        lock (LlamaCpp.Gate)
        {
            // --- README snippet (paths substituted) ---
            var p = new LLama.Common.ModelParams(modelPath) { ContextSize = 256, GpuLayerCount = 0 };
            using var weights = LLama.LLamaWeights.LoadFromFile(p);
            using var ctx = weights.CreateContext(p);
            ctx.NativeHandle.SetLoraAdapters([(weights.NativeHandle.LoadLoraFromFile(adapterPath), 1f)]);
            var batch = new LLama.Native.LLamaBatch();
            ids = ctx.Tokenize("Verse: Jesus wept.", addBos: true, special: true);
            for (int i = 0; i < ids.Length; i++) batch.Add(ids[i], i, LLama.Native.LLamaSeqId.Zero, i == ids.Length - 1);
            ctx.NativeHandle.Decode(batch);
            logits = ctx.NativeHandle.GetLogitsIth(ids.Length - 1).ToArray();
            // --- end ---
        }
        Assert.Equal(2048, logits.Length);
        var harness = LlamaCpp.Logits(modelPath, ids.Select(t => (int)t).ToArray(), adapterPath);
        // the snippet uses llama.cpp's default F16 KV cache, the harness F32: close, not identical
        Assert.True(GgufTestModels.RelativeError([logits], [harness[^1]]) < 1e-2);
        Assert.Equal(HfTokenizerIds(dir, "Verse: Jesus wept."), ids.Select(t => (int)t).ToArray());
    }

    static int[] HfTokenizerIds(string dir, string text) => PeftSharp.Tokenization.HfTokenizer.Load(dir).Encode(text, addSpecial: true);
}
