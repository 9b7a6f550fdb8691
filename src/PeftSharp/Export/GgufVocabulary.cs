using System.Text.Json;
using System.Text.RegularExpressions;
using PeftSharp.IO.Gguf;
using PeftSharp.Models;
using PeftSharp.Templates;
using PeftSharp.Tokenization;

namespace PeftSharp.Export;

/// <summary>
/// The <c>tokenizer.ggml.*</c> metadata of a Hugging Face tokenizer.json, as llama.cpp's converter writes it.
/// A byte-level BPE becomes <c>gpt2</c> (tokens, merges, and the pre-tokenizer named by <c>tokenizer.ggml.pre</c>);
/// a SentencePiece-style BPE with byte fallback becomes <c>llama</c> (tokens, scores, byte tokens), where llama.cpp
/// merges the adjacent pair whose merged token scores highest: each token's score is minus the rank of the first merge
/// that makes it, which reproduces the merge order of tokenizer.json.
/// </summary>
internal static class GgufVocabulary
{
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;

    /// <summary>llama.cpp pre-tokenizer names of the split regexes this project's tokenizers use.</summary>
    static readonly (string Name, string Regex)[] PreTokenizers =
    [
        ("llama-bpe", @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
        ("qwen2", @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
    ];

    /// <summary>Adds the tokenizer metadata of <paramref name="modelDir"/> for a model of <paramref name="config"/>.</summary>
    public static void WriteTo(GgufMetadata m, string modelDir, ModelConfig config)
    {
        string file = Path.Combine(modelDir, "tokenizer.json");
        if (!File.Exists(file)) throw new PeftException($"{file}: not found; a GGUF model needs the tokenizer (llama.cpp cannot run without one)");
        var tok = HfTokenizer.Load(modelDir);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(file), new JsonDocumentOptions { MaxDepth = 256 });
        var root = doc.RootElement;
        var model = root.GetProperty("model");
        if (JsonUtil.String(model, "type") is { } t && t != "BPE")
            throw new PeftException($"{file}: model.type '{t}' cannot be written to GGUF (only BPE tokenizers)");
        bool byteFallback = JsonUtil.Bool(model, "byte_fallback", false);
        if (tok.VocabSize > config.VocabSize)
            throw new PeftException($"{file}: the tokenizer has {tok.VocabSize} tokens but the model's vocab_size is {config.VocabSize}");

        var added = new Dictionary<int, bool>();   // id → special
        if (root.TryGetProperty("added_tokens", out var addedJson) && addedJson.ValueKind == JsonValueKind.Array)
            foreach (var a in addedJson.EnumerateArray())
                added[a.GetProperty("id").GetInt32()] = JsonUtil.Bool(a, "special", false);
        var merges = ReadMerges(model, file);
        string? unk = JsonUtil.String(model, "unk_token");

        int V = config.VocabSize;
        var tokens = new string[V];
        var types = new int[V];
        for (int id = 0; id < V; id++)
        {
            if (id >= tok.VocabSize || !TryToken(tok, id, out var s))
            {
                tokens[id] = $"[PAD{id}]";      // the converter's filler for ids the tokenizer does not use
                types[id] = Unused;
                continue;
            }
            tokens[id] = s;
            types[id] = added.TryGetValue(id, out bool special) ? (special ? Control : UserDefined)
                : s == unk ? Unknown
                : byteFallback && IsByteToken(s) ? Byte
                : Normal;
        }

        if (byteFallback)
        {
            m.Set("tokenizer.ggml.model", "llama");
            m.Set("tokenizer.ggml.pre", "default");
            var scores = new float[V];
            var rank = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int r = 0; r < merges.Count; r++) rank.TryAdd(merges[r].Left + merges[r].Right, r);
            for (int id = 0; id < V; id++)
                scores[id] = types[id] != Normal ? 0f
                    : rank.TryGetValue(tokens[id], out int r) ? -r
                    : tokens[id].Length == 1 ? 0f : -1e9f;   // a token no merge makes: never prefer merging into it
            m.Set("tokenizer.ggml.tokens", GgufValue.Of(tokens));
            m.Set("tokenizer.ggml.scores", GgufValue.Of(scores));
            m.Set("tokenizer.ggml.token_type", GgufValue.Of(types));
            m.Set("tokenizer.ggml.add_space_prefix", AddsSpacePrefix(root));
        }
        else
        {
            if (!EndsWithByteLevel(root))
                throw new PeftException($"{file}: a BPE without byte_fallback must use the ByteLevel pre-tokenizer to be written to GGUF");
            m.Set("tokenizer.ggml.model", "gpt2");
            m.Set("tokenizer.ggml.pre", PreTokenizerName(root, file));
            m.Set("tokenizer.ggml.tokens", GgufValue.Of(tokens));
            m.Set("tokenizer.ggml.token_type", GgufValue.Of(types));
            m.Set("tokenizer.ggml.merges", GgufValue.Of(merges.Select(x => x.Left + " " + x.Right).ToArray()));
        }

        // which special tokens the tokenizer adds: encode one character with and without them
        var plain = tok.Encode("a", addSpecial: false);
        var full = tok.Encode("a", addSpecial: true);
        int lead = full.Length >= plain.Length && full.AsSpan(full.Length - plain.Length).SequenceEqual(plain) ? full.Length - plain.Length : 0;
        bool addBos = lead > 0, addEos = full.Length > plain.Length + lead;
        int? bos = addBos ? full[0] : tok.BosId ?? config.BosTokenId;
        int? eos = addEos ? full[^1] : tok.EosId ?? (config.EosTokenIds.Length > 0 ? config.EosTokenIds[0] : null);
        if (bos is { } b) m.Set("tokenizer.ggml.bos_token_id", (uint)b);
        if (eos is { } e) m.Set("tokenizer.ggml.eos_token_id", (uint)e);
        if (unk != null && tok.TokenToId(unk) is { } u) m.Set("tokenizer.ggml.unknown_token_id", (uint)u);
        if (tok.PadId is { } p) m.Set("tokenizer.ggml.padding_token_id", (uint)p);
        m.Set("tokenizer.ggml.add_bos_token", addBos);
        m.Set("tokenizer.ggml.add_eos_token", addEos);
        if (ChatTemplateSource.TryLoad(modelDir) is { } chat) m.Set("tokenizer.chat_template", chat.Source);
    }

    static bool TryToken(HfTokenizer tok, int id, out string s)
    {
        try { s = tok.IdToToken(id); return true; }
        catch (PeftException) { s = ""; return false; }
    }

    static bool IsByteToken(string s) => s.Length == 6 && s.StartsWith("<0x", StringComparison.Ordinal) && s[5] == '>'
        && Uri.IsHexDigit(s[3]) && Uri.IsHexDigit(s[4]);

    static List<(string Left, string Right)> ReadMerges(JsonElement model, string file)
    {
        var list = new List<(string, string)>();
        if (!model.TryGetProperty("merges", out var merges) || merges.ValueKind != JsonValueKind.Array) return list;
        foreach (var e in merges.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.String)
            {
                var s = e.GetString()!;
                int sp = s.IndexOf(' ');
                if (sp <= 0) throw new PeftException($"{file}: merge \"{s}\" is not \"left right\"");
                list.Add((s[..sp], s[(sp + 1)..]));
            }
            else if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2)
            {
                var l = e[0].GetString()!; var r = e[1].GetString()!;
                if (l.Contains(' ') || r.Contains(' '))
                    throw new PeftException($"{file}: merge [\"{l}\", \"{r}\"] contains a space, which GGUF's \"left right\" merges cannot hold");
                list.Add((l, r));
            }
            else throw new PeftException($"{file}: model.merges entries must be strings or pairs, got {JsonUtil.Short(e)}");
        }
        return list;
    }

    static IEnumerable<JsonElement> PreTokenizerSteps(JsonElement root)
    {
        var pre = JsonUtil.Prop(root, "pre_tokenizer");
        if (pre.ValueKind != JsonValueKind.Object) yield break;
        if (JsonUtil.String(pre, "type") == "Sequence" && pre.TryGetProperty("pretokenizers", out var seq))
            foreach (var s in seq.EnumerateArray()) yield return s;
        else yield return pre;
    }

    static bool EndsWithByteLevel(JsonElement root) => PreTokenizerSteps(root).LastOrDefault() is { ValueKind: JsonValueKind.Object } last
        && JsonUtil.String(last, "type") == "ByteLevel";

    static string PreTokenizerName(JsonElement root, string file)
    {
        var steps = PreTokenizerSteps(root).ToList();
        var byteLevel = steps[^1];
        if (JsonUtil.Bool(byteLevel, "add_prefix_space", false))
            throw new PeftException($"{file}: ByteLevel add_prefix_space=true has no llama.cpp pre-tokenizer");
        if (steps.Count == 1 && JsonUtil.Bool(byteLevel, "use_regex", true)) return "gpt-2";
        if (steps.Count == 2 && JsonUtil.String(steps[0], "type") == "Split" && !JsonUtil.Bool(byteLevel, "use_regex", true)
            && steps[0].TryGetProperty("pattern", out var pat) && JsonUtil.String(pat, "Regex") is { } regex)
        {
            foreach (var (name, r) in PreTokenizers)
                if (r == regex) return name;
            throw new PeftException($"{file}: pre-tokenizer regex {regex} is not one llama.cpp knows by name (known: {string.Join(", ", PreTokenizers.Select(p => p.Name))}, gpt-2)");
        }
        throw new PeftException($"{file}: this pre_tokenizer has no llama.cpp equivalent this exporter knows");
    }

    /// <summary>SentencePiece's add_dummy_prefix, as tokenizer.json spells it: a Prepend("▁") normalizer or a Metaspace
    /// pre-tokenizer that prepends.</summary>
    static bool AddsSpacePrefix(JsonElement root)
    {
        var norm = JsonUtil.Prop(root, "normalizer");
        if (norm.ValueKind == JsonValueKind.Object && Regex.IsMatch(norm.GetRawText(), "\"type\"\\s*:\\s*\"Prepend\"")) return true;
        foreach (var s in PreTokenizerSteps(root))
            if (JsonUtil.String(s, "type") == "Metaspace")
                return JsonUtil.String(s, "prepend_scheme") is null or "always" or "first" && JsonUtil.Bool(s, "add_prefix_space", true);
        return false;
    }
}
