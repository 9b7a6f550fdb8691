using System.Text.Json;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Tokenization;

namespace PeftSharp.Tests.TestSupport;

/// <summary>A complete tiny model folder (trained BPE tokenizer + random weights) and a small data set, on disk.</summary>
internal static class TinyRun
{
    static readonly string[] Words = ["alpha", "beta", "gamma", "delta", "red", "green", "blue", "one", "two", "three", "cat", "dog"];

    public static string Temp(string tag)
    {
        var d = Path.Combine(Path.GetTempPath(), $"peftsharp-{tag}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Model folder with a ~300-token byte-level BPE and a 2-layer llama of that vocabulary.</summary>
    public static string ModelDir(string type = "llama", ulong seed = 3)
    {
        var dir = Temp("model");
        var rng = new Random(1);
        var corpus = Enumerable.Range(0, 400).Select(_ => string.Join(' ', Enumerable.Range(0, 8).Select(_ => Words[rng.Next(Words.Length)]))).ToList();
        var bpe = BpeTrainer.Train(corpus, 300, ["<s>", "</s>"]);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), BpeTrainer.ToTokenizerJson(bpe, "<s>", "</s>"));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), BpeTrainer.ToTokenizerConfigJson("<s>", "</s>", 128));
        var c = TinyModels.Config(type) with { VocabSize = bpe.Vocab.Count, BosTokenId = 0, EosTokenIds = [1] };
        var w = TinyModels.Weights(c, seed);
        foreach (var t in w.Values) { var f = t.Floats; for (int i = 0; i < f.Length; i++) f[i] *= 0.25f; }
        File.WriteAllText(Path.Combine(dir, "config.json"), c.ToJson());
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), w.Select(kv => (kv.Key, kv.Value)));
        foreach (var t in w.Values) t.Dispose();
        return dir;
    }

    /// <summary>A prompt/completion JSONL task: "<word> <word> →" answered with the words reversed.</summary>
    public static string Data(int count = 80, int seed = 2)
    {
        var rng = new Random(seed);
        var path = Path.Combine(Temp("data"), "train.jsonl");
        using var w = new StreamWriter(path);
        for (int i = 0; i < count; i++)
        {
            string a = Words[rng.Next(Words.Length)], b = Words[rng.Next(Words.Length)];
            w.WriteLine(JsonSerializer.Serialize(new { prompt = $"{a} {b} ->", completion = $" {b} {a}" }));
        }
        return path;
    }
}
