using PeftSharp.Export;
using PeftSharp.IO.Gguf;
using PeftSharp.Models;
using PeftSharp.Tests.TestSupport;
using PeftSharp.Tokenization;
using Xunit.Abstractions;

namespace PeftSharp.Tests.Gguf;

/// <summary>llama.cpp's tokenizer, reading the vocabulary PeftSharp exported, gives the token ids PeftSharp's
/// tokenizer.json implementation gives — for the real Llama 2 (SentencePiece BPE), Llama 3 and Qwen3 (byte-level BPE)
/// files, on a 1-layer model with that vocabulary.</summary>
public class GgufTokenizerTests(ITestOutputHelper output)
{
    internal static readonly string[] Texts =
    [
        "Hello world",
        "Hello, world! How are you doing today?",
        " leading space and  double  spaces",
        "trailing space ",
        "line one\nline two\n\nline four\r\n\ttabbed",
        "numbers 1 12 123 1234 12345 3.14159 -42 1,000,000",
        "don't won't it's we'll they're I'm you've he'd",
        "Ünïcödé: naïve café résumé, Ελληνικά, русский, 中文字符, 日本語のテキスト, 한국어",
        "emoji 🙂🚀 and symbols ©®™ → ∑ ∞",
        "code: def f(x):\n    return x**2  # square\n",
        "   ",
        "a",
        "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!",
        "https://example.com/path?query=1&b=2",
    ];

    internal static readonly Dictionary<string, string[]> SpecialTexts = new()
    {
        ["llama2"] = ["<s>[INST] hi [/INST] hello</s>"],
        ["llama3"] = ["<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"],
        ["qwen3"] = ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"],
    };

    [Theory]
    [InlineData("llama2", 32000)]
    [InlineData("llama3", 128256)]
    [InlineData("qwen3", 151936)]
    public void LlamaCppTokenizesTheExportedVocabularyAsPeftSharpDoes(string name, int vocab)
    {
        var (dir, gguf) = GgufTokenizerTestTexts.Exported(name, vocab);
        var tok = HfTokenizer.Load(dir);
        int checkedTokens = 0;
        var texts = Texts.Concat(SpecialTexts[name]).ToArray();
        var all = LlamaCpp.Tokenize(gguf, texts);
        for (int i = 0; i < texts.Length; i++)
        {
            var text = texts[i];
            var ours = tok.Encode(text, addSpecial: true);
            var theirs = all[i];
            Assert.True(ours.SequenceEqual(theirs),
                $"{name}: \"{text}\"\n PeftSharp {string.Join(",", ours)}\n llama.cpp {string.Join(",", theirs)}");
            checkedTokens += ours.Length;
        }
        output.WriteLine($"{name}: {Texts.Length + SpecialTexts[name].Length} texts, {checkedTokens} tokens identical");
    }
}

/// <summary>Importing: the tokenizer rebuilt from an exported GGUF file encodes and decodes as the original
/// tokenizer.json does.</summary>
public class GgufTokenizerImportTests
{
    [Theory]
    [InlineData("llama2", 32000)]
    [InlineData("llama3", 128256)]
    [InlineData("qwen3", 151936)]
    public void TokenizerFromGgufMatchesTheOriginal(string name, int vocab)
    {
        var (dir, gguf) = GgufTokenizerTestTexts.Exported(name, vocab);
        var original = HfTokenizer.Load(dir);
        var imported = HfTokenizer.Load(gguf);
        foreach (var text in GgufTokenizerTestTexts.All(name))
        {
            var ids = original.Encode(text, addSpecial: true);
            Assert.Equal(ids, imported.Encode(text, addSpecial: true));
            Assert.Equal(original.Decode(ids), imported.Decode(ids));
        }
        Assert.Equal(PeftSharp.Templates.ChatTemplateSource.TryLoad(dir)?.Source, PeftSharp.Templates.ChatTemplateSource.TryLoad(gguf)?.Source);
    }
}

static class GgufTokenizerTestTexts
{
    static readonly Dictionary<string, Lazy<(string, string)>> Cache = new();

    /// <summary>A 1-layer model with the real vocabulary exported once per test run: (folder, .gguf path).</summary>
    public static (string Dir, string Gguf) Exported(string name, int vocab)
    {
        Lazy<(string, string)> lazy;
        lock (Cache)
            if (!Cache.TryGetValue(name, out lazy!)) Cache[name] = lazy = new Lazy<(string, string)>(() => Export(name, vocab));
        return lazy.Value;
    }

    static (string, string) Export(string name, int vocab)
    {
        var tokDir = GgufTestModels.NpmTokenizer(name);
        Assert.True(File.Exists(Path.Combine(tokDir, "tokenizer.json")), $"npm fixture missing: {tokDir} (run npm ci in tests/fixtures/npm)");
        var c = TinyModels.Config(name == "qwen3" ? "qwen3" : "llama", tied: true, layers: 1, hidden: 32, heads: 4, kvHeads: 2, vocab: vocab, intermediate: 64);
        var dir = Path.Combine(Path.GetTempPath(), "peftsharp-gguf-tok-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" }) File.Copy(Path.Combine(tokDir, f), Path.Combine(dir, f));
        var gguf = Path.Combine(dir, "vocab.gguf");
        // the weights do not matter for tokenization: uninitialized F16 tensors, tied embeddings, cost nothing to make
        var tensors = RandomWeights.Specs(c).ToDictionary(sp => sp.Name, sp => new PeftSharp.Tensors.Tensor(PeftSharp.Tensors.DType.F16, sp.Shape));
        try
        {
            using var model = TinyModels.Build(c, tensors);
            GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgmlType.F16);
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
        return (dir, gguf);
    }

    public static IEnumerable<string> All(string name) => GgufTokenizerTests.Texts.Concat(GgufTokenizerTests.SpecialTexts[name]);
}
