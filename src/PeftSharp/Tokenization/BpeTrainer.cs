using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace PeftSharp.Tokenization;

/// <summary>
/// Trains a byte-level BPE (GPT-2 style: the GPT-2 split regex, bytes mapped to printable characters, merges of the
/// most frequent adjacent pair, ties broken by the pair's first occurrence order) and writes it as a Hugging Face
/// tokenizer.json that <see cref="HfTokenizer"/> and transformers load. Special tokens take the first ids.
/// </summary>
internal static class BpeTrainer
{
    // GPT-2's pre-tokenization pattern (what ByteLevel with use_regex=true applies).
    static readonly Regex Gpt2Split = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.Compiled);

    public sealed record Result(IReadOnlyList<string> Vocab, IReadOnlyList<(string, string)> Merges, IReadOnlyList<string> SpecialTokens);

    public static Result Train(IEnumerable<string> texts, int vocabSize, IReadOnlyList<string> specialTokens, int minFrequency = 2)
    {
        var byteToChar = ByteLevelAlphabetTable();
        int baseSize = specialTokens.Count + 256;
        if (vocabSize < baseSize) throw new PeftException($"vocab size {vocabSize} is below the {baseSize} special and byte tokens");

        // Word frequencies over pre-tokens, each word as a list of symbols (byte characters).
        var wordFreq = new Dictionary<string, int>();
        foreach (var text in texts)
            foreach (Match m in Gpt2Split.Matches(text))
            {
                var mapped = string.Concat(Encoding.UTF8.GetBytes(m.Value).Select(b => byteToChar[b]));
                wordFreq[mapped] = wordFreq.GetValueOrDefault(mapped) + 1;
            }
        var words = wordFreq.Select(kv => (Symbols: kv.Key.Select(c => c.ToString()).ToList(), Freq: kv.Value))
            .OrderByDescending(w => w.Freq).ThenBy(w => string.Concat(w.Symbols), StringComparer.Ordinal).ToList();

        var vocab = new List<string>(specialTokens);
        vocab.AddRange(Enumerable.Range(0, 256).Select(b => byteToChar[b].ToString()));
        var merges = new List<(string, string)>();
        while (vocab.Count < vocabSize)
        {
            var counts = new Dictionary<(string, string), long>();
            foreach (var (symbols, freq) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    var pair = (symbols[i], symbols[i + 1]);
                    counts[pair] = counts.GetValueOrDefault(pair) + freq;
                }
            if (counts.Count == 0) break;
            // Most frequent pair; ties → lexicographically smallest, so training is deterministic.
            var best = counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key.Item1, StringComparer.Ordinal)
                .ThenBy(kv => kv.Key.Item2, StringComparer.Ordinal).First();
            if (best.Value < minFrequency) break;
            var (a, b) = best.Key;
            string merged = a + b;
            merges.Add((a, b));
            vocab.Add(merged);
            foreach (var (symbols, _) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                    if (symbols[i] == a && symbols[i + 1] == b)
                    {
                        symbols[i] = merged;
                        symbols.RemoveAt(i + 1);
                    }
        }
        return new Result(vocab, merges, specialTokens);
    }

    /// <summary>GPT-2's byte → printable character table (bytes that are printable map to themselves).</summary>
    public static char[] ByteLevelAlphabetTable()
    {
        var bs = new List<int>();
        for (int i = '!'; i <= '~'; i++) bs.Add(i);
        for (int i = '¡'; i <= '¬'; i++) bs.Add(i);
        for (int i = '®'; i <= 'ÿ'; i++) bs.Add(i);
        var table = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++) table[b] = bs.Contains(b) ? (char)b : (char)(256 + n++);
        return table;
    }

    /// <summary>tokenizer.json (byte-level BPE, BOS added by the post-processor) for the trained vocabulary.</summary>
    public static string ToTokenizerJson(Result r, string bos, string eos)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            for (int i = 0; i < r.SpecialTokens.Count; i++)
            {
                w.WriteStartObject();
                w.WriteNumber("id", i);
                w.WriteString("content", r.SpecialTokens[i]);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false);
                w.WriteBoolean("special", true);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNull("normalizer");
            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", false);
            w.WriteBoolean("trim_offsets", true);
            w.WriteBoolean("use_regex", true);
            w.WriteEndObject();
            w.WriteStartObject("post_processor");
            w.WriteString("type", "TemplateProcessing");
            w.WriteStartArray("single");
            WriteSpecial(w, bos); WriteSequence(w, "A");
            w.WriteEndArray();
            w.WriteStartArray("pair");
            WriteSpecial(w, bos); WriteSequence(w, "A"); WriteSpecial(w, bos); WriteSequence(w, "B");
            w.WriteEndArray();
            w.WriteStartObject("special_tokens");
            w.WriteStartObject(bos);
            w.WriteString("id", bos);
            w.WriteStartArray("ids"); w.WriteNumberValue(r.Vocab.ToList().IndexOf(bos)); w.WriteEndArray();
            w.WriteStartArray("tokens"); w.WriteStringValue(bos); w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject("decoder");
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", true);
            w.WriteBoolean("trim_offsets", true);
            w.WriteBoolean("use_regex", true);
            w.WriteEndObject();
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            w.WriteNull("unk_token");
            w.WriteNull("continuing_subword_prefix");
            w.WriteNull("end_of_word_suffix");
            w.WriteBoolean("fuse_unk", false);
            w.WriteBoolean("byte_fallback", false);
            w.WriteBoolean("ignore_merges", false);
            w.WriteStartObject("vocab");
            for (int i = 0; i < r.Vocab.Count; i++) w.WriteNumber(r.Vocab[i], i);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var (a, b) in r.Merges) { w.WriteStartArray(); w.WriteStringValue(a); w.WriteStringValue(b); w.WriteEndArray(); }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        _ = eos;
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    static void WriteSpecial(Utf8JsonWriter w, string token)
    {
        w.WriteStartObject(); w.WriteStartObject("SpecialToken"); w.WriteString("id", token); w.WriteNumber("type_id", 0); w.WriteEndObject(); w.WriteEndObject();
    }

    static void WriteSequence(Utf8JsonWriter w, string id)
    {
        w.WriteStartObject(); w.WriteStartObject("Sequence"); w.WriteString("id", id); w.WriteNumber("type_id", 0); w.WriteEndObject(); w.WriteEndObject();
    }

    /// <summary>tokenizer_config.json naming the special tokens (transformers reads bos/eos/pad from here).</summary>
    public static string ToTokenizerConfigJson(string bos, string eos, int maxLength) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["add_bos_token"] = true,
        ["add_eos_token"] = false,
        ["bos_token"] = bos,
        ["eos_token"] = eos,
        ["pad_token"] = eos,
        ["clean_up_tokenization_spaces"] = false,
        ["model_max_length"] = maxLength,
        ["tokenizer_class"] = "PreTrainedTokenizerFast",
    }, new JsonSerializerOptions { WriteIndented = true });
}
