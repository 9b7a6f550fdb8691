using System.Text;
using System.Text.Json;
using PeftSharp.Export;
using PeftSharp.Tokenization;

namespace PeftSharp.IO.Gguf;

/// <summary>
/// The tokenizer of a GGUF model file as a <see cref="HfTokenizer"/>: the <c>tokenizer.ggml.*</c> metadata is turned
/// into the equivalent tokenizer.json. <c>gpt2</c> vocabularies keep their merges and get the split regex their
/// <c>tokenizer.ggml.pre</c> names; <c>llama</c> (SentencePiece) vocabularies get merges rebuilt from the scores as
/// Hugging Face's converter builds them (every split of a token into two tokens, ordered by the merged token's score).
/// </summary>
internal static class GgufTokenizerLoader
{
    static readonly Dictionary<string, string> SplitRegex = new()
    {
        ["llama-bpe"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ["llama3"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ["qwen2"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    };

    public static HfTokenizer Load(string path)
    {
        using var f = GgufFile.Open(path);
        return FromMetadata(f.Metadata, path);
    }

    public static HfTokenizer FromMetadata(GgufMetadata m, string path)
    {
        string model = m.GetString("tokenizer.ggml.model") ?? throw new PeftException($"{path}: no tokenizer.ggml.model; the file has no tokenizer (pass token ids instead of text)");
        if (model is not ("gpt2" or "llama"))
            throw new PeftException($"{path}: tokenizer.ggml.model '{model}' is not supported (gpt2, llama)");
        var tokens = m.GetArray<string>("tokenizer.ggml.tokens") ?? throw new PeftException($"{path}: tokenizer.ggml.tokens is missing");
        var types = m.GetArray<int>("tokenizer.ggml.token_type") ?? Enumerable.Repeat(GgufVocabulary.Normal, tokens.Length).ToArray();
        if (types.Length != tokens.Length) throw new PeftException($"{path}: tokenizer.ggml.token_type has {types.Length} entries for {tokens.Length} tokens");
        bool spm = model == "llama";
        string pre = m.GetString("tokenizer.ggml.pre") ?? "default";
        string? Token(string key) => m.GetInt(key) is { } id && (uint)id < (uint)tokens.Length ? tokens[id] : null;
        string? bos = Token("tokenizer.ggml.bos_token_id"), eos = Token("tokenizer.ggml.eos_token_id"), unk = Token("tokenizer.ggml.unknown_token_id");
        bool addBos = m.GetBool("tokenizer.ggml.add_bos_token") ?? spm, addEos = m.GetBool("tokenizer.ggml.add_eos_token") ?? false;
        List<(string, string)> merges = spm
            ? SpmMerges(tokens, types, m.GetArray<float>("tokenizer.ggml.scores") ?? new float[tokens.Length])
            : (m.GetArray<string>("tokenizer.ggml.merges") ?? []).Select(s => { int i = s.IndexOf(' '); return i > 0 ? (s[..i], s[(i + 1)..]) : throw new PeftException($"{path}: merge \"{s}\" is not \"left right\""); }).ToList();

        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteStartArray("added_tokens");
            for (int id = 0; id < tokens.Length; id++)
                if (types[id] is GgufVocabulary.Control or GgufVocabulary.UserDefined or GgufVocabulary.Unknown)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", id); w.WriteString("content", tokens[id]);
                    w.WriteBoolean("single_word", false); w.WriteBoolean("lstrip", false); w.WriteBoolean("rstrip", false);
                    w.WriteBoolean("normalized", false); w.WriteBoolean("special", types[id] != GgufVocabulary.UserDefined);
                    w.WriteEndObject();
                }
            w.WriteEndArray();
            if (spm)
            {
                w.WriteStartObject("normalizer"); w.WriteString("type", "Sequence"); w.WriteStartArray("normalizers");
                if (m.GetBool("tokenizer.ggml.add_space_prefix") ?? true) { w.WriteStartObject(); w.WriteString("type", "Prepend"); w.WriteString("prepend", "▁"); w.WriteEndObject(); }
                w.WriteStartObject(); w.WriteString("type", "Replace"); w.WriteStartObject("pattern"); w.WriteString("String", " "); w.WriteEndObject(); w.WriteString("content", "▁"); w.WriteEndObject();
                w.WriteEndArray(); w.WriteEndObject();
                w.WriteNull("pre_tokenizer");
            }
            else
            {
                w.WriteNull("normalizer");
                w.WriteStartObject("pre_tokenizer");
                if (SplitRegex.TryGetValue(pre, out var regex))
                {
                    w.WriteString("type", "Sequence"); w.WriteStartArray("pretokenizers");
                    w.WriteStartObject(); w.WriteString("type", "Split"); w.WriteStartObject("pattern"); w.WriteString("Regex", regex); w.WriteEndObject();
                    w.WriteString("behavior", "Isolated"); w.WriteBoolean("invert", false); w.WriteEndObject();
                    ByteLevel(w, useRegex: false);
                    w.WriteEndArray();
                }
                else if (pre is "gpt-2" or "default") { w.WriteString("type", "ByteLevel"); w.WriteBoolean("add_prefix_space", false); w.WriteBoolean("trim_offsets", true); w.WriteBoolean("use_regex", true); }
                else throw new PeftException($"{path}: tokenizer.ggml.pre '{pre}' is not supported (llama-bpe, qwen2, gpt-2)");
                w.WriteEndObject();
            }
            PostProcessor(w, addBos ? bos : null, addEos ? eos : null, tokens);
            w.WriteStartObject("decoder");
            if (spm)
            {
                w.WriteString("type", "Sequence"); w.WriteStartArray("decoders");
                w.WriteStartObject(); w.WriteString("type", "Replace"); w.WriteStartObject("pattern"); w.WriteString("String", "▁"); w.WriteEndObject(); w.WriteString("content", " "); w.WriteEndObject();
                w.WriteStartObject(); w.WriteString("type", "ByteFallback"); w.WriteEndObject();
                w.WriteStartObject(); w.WriteString("type", "Fuse"); w.WriteEndObject();
                w.WriteStartObject(); w.WriteString("type", "Strip"); w.WriteString("content", " "); w.WriteNumber("start", (m.GetBool("tokenizer.ggml.add_space_prefix") ?? true) ? 1 : 0); w.WriteNumber("stop", 0); w.WriteEndObject();
                w.WriteEndArray();
            }
            else { w.WriteString("type", "ByteLevel"); w.WriteBoolean("add_prefix_space", true); w.WriteBoolean("trim_offsets", true); w.WriteBoolean("use_regex", true); }
            w.WriteEndObject();
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            if (unk != null) w.WriteString("unk_token", unk); else w.WriteNull("unk_token");
            w.WriteBoolean("fuse_unk", spm); w.WriteBoolean("byte_fallback", spm);
            w.WriteBoolean("ignore_merges", pre is "llama-bpe" or "llama3");
            w.WriteStartObject("vocab");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (int id = 0; id < tokens.Length; id++) if (seen.Add(tokens[id])) w.WriteNumber(tokens[id], id);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var (l, r) in merges) w.WriteStringValue(l + " " + r);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        var config = new TokenizerConfig
        {
            BosToken = bos, EosToken = eos, UnkToken = unk, PadToken = Token("tokenizer.ggml.padding_token_id"),
            ChatTemplate = m.GetString("tokenizer.chat_template"),
        };
        return HfTokenizer.FromJson(ms.ToArray(), path, config);
    }

    static void ByteLevel(Utf8JsonWriter w, bool useRegex)
    {
        w.WriteStartObject(); w.WriteString("type", "ByteLevel"); w.WriteBoolean("add_prefix_space", false);
        w.WriteBoolean("trim_offsets", false); w.WriteBoolean("use_regex", useRegex); w.WriteEndObject();
    }

    static void PostProcessor(Utf8JsonWriter w, string? bos, string? eos, string[] tokens)
    {
        if (bos == null && eos == null) { w.WriteNull("post_processor"); return; }
        w.WriteStartObject("post_processor");
        w.WriteString("type", "TemplateProcessing");
        void Seq(string which) { w.WriteStartObject(); w.WriteStartObject("Sequence"); w.WriteString("id", which); w.WriteNumber("type_id", 0); w.WriteEndObject(); w.WriteEndObject(); }
        void Special(string t) { w.WriteStartObject(); w.WriteStartObject("SpecialToken"); w.WriteString("id", t); w.WriteNumber("type_id", 0); w.WriteEndObject(); w.WriteEndObject(); }
        w.WriteStartArray("single"); if (bos != null) Special(bos); Seq("A"); if (eos != null) Special(eos); w.WriteEndArray();
        w.WriteStartArray("pair"); if (bos != null) Special(bos); Seq("A"); if (eos != null) Special(eos); if (bos != null) Special(bos); Seq("B"); if (eos != null) Special(eos); w.WriteEndArray();
        w.WriteStartObject("special_tokens");
        foreach (var t in new[] { bos, eos }.Where(t => t != null).Distinct())
        {
            w.WriteStartObject(t!); w.WriteString("id", t); w.WriteStartArray("ids"); w.WriteNumberValue(Array.IndexOf(tokens, t)); w.WriteEndArray();
            w.WriteStartArray("tokens"); w.WriteStringValue(t); w.WriteEndArray(); w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>SentencePiece merges as HF's converter derives them: for each normal token, every split into two
    /// vocabulary tokens, ordered by the token's score (descending), then the pieces' ids.</summary>
    static List<(string, string)> SpmMerges(string[] tokens, int[] types, float[] scores)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++) ids.TryAdd(tokens[i], i);
        var merges = new List<(float Score, int L, int R, string Left, string Right)>();
        for (int id = 0; id < tokens.Length; id++)
        {
            if (types[id] != GgufVocabulary.Normal) continue;
            var t = tokens[id];
            for (int k = 1; k < t.Length; k++)
            {
                if (char.IsLowSurrogate(t[k])) continue;
                string l = t[..k], r = t[k..];
                if (ids.TryGetValue(l, out int li) && ids.TryGetValue(r, out int ri)) merges.Add((scores[id], li, ri, l, r));
            }
        }
        return merges.OrderByDescending(x => x.Score).ThenBy(x => x.L).ThenBy(x => x.R).Select(x => (x.Left, x.Right)).ToList();
    }
}
