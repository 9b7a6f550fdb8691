using System.Text;
using System.Text.Json;
using PeftSharp.Cli.Training;
using PeftSharp.Data;
using PeftSharp.IO;
using PeftSharp.IO.Gguf;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Quantization;
using PeftSharp.Templates;
using PeftSharp.Tensors;
using PeftSharp.Tokenization;
using PeftSharp.Training;

namespace PeftSharp.Fuzz;

/// <summary>One harness per reader of untrusted bytes. Each gets the fuzzer's input; a PeftException is the
/// expected answer to bad input, anything else escaping (or a hang, or a crash) is a finding.</summary>
internal static class Harnesses
{
    public static readonly Dictionary<string, Action<byte[], string>> All = new()
    {
        ["safetensors"] = Safetensors,
        ["index"] = ShardIndex,
        ["config"] = (b, _) => ModelConfig.Parse(Utf8(b), "config.json"),
        ["tokenizer"] = Tokenizer,
        ["tokenizer-config"] = TokenizerConfigAndTemplate,
        ["jinja"] = Jinja,
        ["pretok-regex"] = PreTokenizerRegex,
        ["adapter-config"] = (b, _) => LoraConfig.Parse(Utf8(b), "adapter_config.json"),
        ["jsonl"] = Jsonl,
        ["yaml"] = Yaml,
        ["bnb"] = BnbState,
        ["gguf"] = Gguf,
    };

    static string Utf8(byte[] b) => Encoding.UTF8.GetString(b);

    static string WriteFile(string dir, string name, byte[] bytes)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    static void Safetensors(byte[] b, string dir)
    {
        using var f = SafetensorsFile.Open(WriteFile(dir, "model.safetensors", b));
        foreach (var e in f.Entries.Take(8))
        {
            using var t = f.Get(e.Name);
            if (t.DType == DType.F32) _ = t.Floats.Length > 0 ? t.Floats[0] : 0;
        }
    }

    // The shard the index names is written once per process (the reader never writes): rewriting it for every
    // input made this the slowest harness (59 executions/s).
    static string? _indexDir;

    static void ShardIndex(byte[] b, string dir)
    {
        if (_indexDir == null)
        {
            _indexDir = Path.Combine(dir, "index");
            Directory.CreateDirectory(_indexDir);
            using var tiny = Tiny();
            SafetensorsWriter.Write(Path.Combine(_indexDir, "model-00001-of-00001.safetensors"), [("a", tiny)]);
        }
        WriteFile(_indexDir, SafetensorsCheckpoint.IndexFileName, b);
        using var c = SafetensorsCheckpoint.OpenDirectory(_indexDir);
    }

    static Tensor Tiny()
    {
        var t = new Tensor(DType.F32, 2, 2);
        t.Floats.Fill(1);
        return t;
    }

    const string Sample = "Hello wörld 123 — 'tis 𝒜 test\n\t<s></s> ab";

    static void Tokenizer(byte[] b, string _)
    {
        var tok = HfTokenizer.FromJson(b, "tokenizer.json");
        var ids = tok.Encode(Sample);
        _ = tok.Decode(ids.Where(i => i < tok.VocabSize).ToArray());
    }

    // Built on first use, inside the fuzzer's loop: instrumented code must not run before SharpFuzz sets up its
    // coverage map, and a static initializer of this class would run at the first look at All.
    static List<ChatMessage>? _messages;
    static List<ChatMessage> Messages => _messages ??=
        [new("system", "be brief"), new("user", "hi <b>"), new("assistant", "hello"), new("user", "again")];

    static void TokenizerConfigAndTemplate(byte[] b, string _)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(b); } catch (JsonException) { return; }
        using (doc)
        {
            try { TokenizerConfig.Parse(doc.RootElement, "tokenizer_config.json"); }
            catch (InvalidOperationException e) when (e.Message.Contains("UTF")) { throw new PeftException(e.Message); }
        }
        var (template, bos, eos) = ChatTemplateSource.Parse(Utf8(b), "tokenizer_config.json");
        if (template != null)
            ChatTemplate.Render(template, Messages, addGenerationPrompt: true,
                new Dictionary<string, object?> { ["bos_token"] = bos, ["eos_token"] = eos });
    }

    static void Jinja(byte[] b, string _)
    {
        var t = new JinjaTemplate(Utf8(b));
        t.Render(new Dictionary<string, object?>
        {
            ["messages"] = Messages, ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["add_generation_prompt"] = true,
            ["tools"] = null, ["n"] = 3L,
        });
    }

    /// <summary>First line: a regex for a Split pre-tokenizer; the rest: the text it splits.</summary>
    static void PreTokenizerRegex(byte[] b, string _)
    {
        string s = Utf8(b);
        int nl = s.IndexOf('\n');
        string pattern = nl < 0 ? s : s[..nl], text = nl < 0 ? Sample : s[(nl + 1)..];
        string json = JsonSerializer.Serialize(new { type = "Split", pattern = new { Regex = pattern }, behavior = "Isolated", invert = false });
        var pre = PreTokenizer.FromJson(JsonDocument.Parse(json).RootElement, "tokenizer.json")!;
        var output = new List<Piece>();
        pre.Split(new Piece(text, 0, text.Length), output, isLast: true, firstSection: true);
    }

    static void Jsonl(byte[] b, string dir)
    {
        string path = WriteFile(dir, "data.jsonl", b);
        DatasetLoader.Load(path, new DatasetLoadOptions { SkipBadLines = true });
    }

    static void Yaml(byte[] b, string dir)
    {
        string path = WriteFile(dir, "run.yaml", b);
        var r = TrainSettings.ApplyYaml(new TrainRequest(new TrainingOptions { ModelDir = "m", DataFile = "d", OutputDir = "o" }), path);
        r.Options.Validate();
    }

    /// <summary>A GGUF file: header, metadata and tensor infos; then the model config, the tokenizer and the tensors
    /// as `peft` reads a .gguf model (each stage refuses bad input with a PeftException, which ends the run).</summary>
    static void Gguf(byte[] b, string dir)
    {
        string path = WriteFile(dir, "model.gguf", b);
        using var f = GgufFile.Open(path);
        ModelConfig c;
        try { c = GgufModelLoader.ReadConfig(f); }
        catch (PeftException) { GgufTokenizerLoader.FromMetadata(f.Metadata, path); return; }
        try { GgufTokenizerLoader.FromMetadata(f.Metadata, path).Encode(Sample); }
        catch (PeftException) { }
        var (model, owned) = GgufModelLoader.Load(path, null, null);
        model.Dispose();
        foreach (var t in owned) t.Dispose();
    }

    static Dictionary<string, Tensor>? _quantized;
    static Dictionary<string, Tensor> Quantized => _quantized ??= MakeQuantized();

    static Dictionary<string, Tensor> MakeQuantized()
    {
        var w = new float[64 * 8];
        for (int i = 0; i < w.Length; i++) w[i] = MathF.Sin(i);
        var q = Quantized4Bit.Quantize(PeftSharp.Compute.ComputeContext.CreateCpu(), w, [8, 64], Quant4Type.NF4, 64, doubleQuant: true);
        return BnbQuantState.ToTensors("layer", q).ToDictionary(x => x.Name, x => x.Tensor);
    }

    /// <summary>A real NF4 weight whose quant_state JSON is replaced by the input.</summary>
    static void BnbState(byte[] b, string _)
    {
        var tensors = new Dictionary<string, Tensor>(Quantized);
        var state = new Tensor(DType.U8, Math.Max(1, b.Length));
        b.CopyTo(state.Span<byte>());
        tensors[BnbQuantState.QuantStateKey("layer", Quant4Type.NF4)] = state;
        using (state) BnbQuantState.FromTensors("layer", tensors, "model.safetensors");
    }
}
