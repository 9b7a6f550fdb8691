using System.Text.Json;
using PeftSharp.Tokenization;

namespace PeftSharp.Tests.Tokenization;

/// <summary>The heap-based BPE merge loop against a naive reference (scan for the lowest-ranked pair, leftmost, merge).</summary>
public class BpeMergeReferenceTests
{
    [Fact]
    public void HeapMergeMatchesNaiveMergeOnQwen3Merges()
    {
        string file = Path.Combine(TokenizerFiles.ModelDir("qwen3"), "tokenizer.json");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
        var modelJson = doc.RootElement.GetProperty("model");
        var model = BpeModel.FromJson(modelJson, file);
        var vocab = modelJson.GetProperty("vocab").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        var ranks = new Dictionary<(string, string), int>();
        int r = 0;
        foreach (var m in modelJson.GetProperty("merges").EnumerateArray()) ranks.TryAdd((m[0].GetString()!, m[1].GetString()!), r++);

        var rng = new Random(7);
        string alphabet = "abcdefghijklmnopqrstuvwxyz  eeettaaoinn.,'";
        int compared = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            int len = rng.Next(1, 60);
            var chars = new char[len];
            for (int i = 0; i < len; i++) chars[i] = alphabet[rng.Next(alphabet.Length)];
            string word = ByteLevelEncoding.Map(new string(chars)); // spaces become "Ġ"
            var actual = new List<int>();
            model.Tokenize(word, actual);
            var expected = NaiveBpe(word, ranks).Select(t => vocab[t]).ToList();
            Assert.Equal(expected, actual);
            compared++;
        }
        Assert.Equal(300, compared);
    }

    static List<string> NaiveBpe(string word, Dictionary<(string, string), int> ranks)
    {
        var symbols = word.Select(c => c.ToString()).ToList();
        while (true)
        {
            int best = -1, bestRank = int.MaxValue;
            for (int i = 0; i + 1 < symbols.Count; i++)
                if (ranks.TryGetValue((symbols[i], symbols[i + 1]), out int rank) && rank < bestRank) { bestRank = rank; best = i; }
            if (best < 0) return symbols;
            symbols[best] += symbols[best + 1];
            symbols.RemoveAt(best + 1);
        }
    }
}
