using System.Text.Json;

namespace PeftSharp.Tokenization;

/// <summary>
/// A Hugging Face tokenizer.json (+ tokenizer_config.json), run with HF `tokenizers` semantics:
/// added tokens are cut out first, each remaining piece is normalized, pre-tokenized and BPE-encoded,
/// then the post-processor adds BOS/EOS. Decode runs the file's decoder chain.
/// Thread-safe: encoding state is per call (the BPE cache is locked).
/// </summary>
public sealed class HfTokenizer : ITokenizer
{
    readonly Normalizer? normalizer;
    readonly PreTokenizer? preTokenizer;
    readonly bool byteLevelInput;
    readonly BpeModel model;
    PostProcessor? postProcessor;
    readonly Decoder? decoder;
    readonly AddedTokenMatcher rawMatcher;        // added tokens with normalized=false: matched on the raw text
    readonly AddedTokenMatcher normalizedMatcher; // normalized=true: matched after the normalizer
    readonly string?[] idToToken;
    readonly bool[] isSpecial;
    readonly Dictionary<string, int> tokenToId;

    /// <summary>The tokenizer.json this was loaded from.</summary>
    public string SourcePath { get; }
    /// <summary>A short name: the model folder's name.</summary>
    public string Name { get; }
    internal TokenizerConfig Config { get; }
    /// <inheritdoc/>
    public int VocabSize => idToToken.Length;
    /// <summary>Id of tokenizer_config.json's bos_token, or null when it is unset or not a token.</summary>
    public int? BosId { get; }
    /// <summary>Id of tokenizer_config.json's eos_token, or null when it is unset or not a token.</summary>
    public int? EosId { get; }
    /// <summary>Id of tokenizer_config.json's pad_token, or null when it is unset or not a token.</summary>
    public int? PadId { get; }

    HfTokenizer(JsonElement root, string file, TokenizerConfig config)
    {
        SourcePath = file;
        Name = NameOf(file);
        Config = config;
        if (root.ValueKind != JsonValueKind.Object) throw new PeftException($"{file}: expected a JSON object at the top level");
        if (!root.TryGetProperty("model", out var modelJson)) throw new PeftException($"{file}: missing \"model\"");

        normalizer = Normalizer.FromJson(OrNull(root, "normalizer"), file);
        preTokenizer = PreTokenizer.FromJson(OrNull(root, "pre_tokenizer"), file);
        byteLevelInput = preTokenizer?.EndsWithByteLevel ?? false;
        model = BpeModel.FromJson(modelJson, file);
        postProcessor = PostProcessor.FromJson(OrNull(root, "post_processor"), file);
        decoder = Decoder.FromJson(OrNull(root, "decoder"), file);

        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var addedJson) && addedJson.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var a in addedJson.EnumerateArray()) added.Add(AddedToken.FromJson(a, file, i++));
        }
        rawMatcher = new AddedTokenMatcher(added.Where(a => !a.Normalized || normalizer == null));
        // As in HF, a normalized added token is looked for in normalized text by its normalized content.
        normalizedMatcher = new AddedTokenMatcher(added.Where(a => a.Normalized && normalizer != null)
            .Select(a => a with { Content = normalizer!.Normalize(a.Content) }));

        tokenToId = new Dictionary<string, int>(model.Vocab, StringComparer.Ordinal);
        foreach (var a in added) tokenToId[a.Content] = a.Id;
        int size = tokenToId.Values.DefaultIfEmpty(-1).Max() + 1;
        idToToken = new string?[size];
        isSpecial = new bool[size];
        foreach (var (tok, id) in model.Vocab)
        {
            if (id < 0) throw new PeftException($"{file}: model.vocab has a negative id {id} for \"{tok}\"");
            idToToken[id] = tok;
        }
        foreach (var a in added)
        {
            if (a.Id < 0) throw new PeftException($"{file}: added token \"{a.Content}\" has a negative id {a.Id}");
            idToToken[a.Id] = a.Content;
            isSpecial[a.Id] = a.Special;
        }

        BosId = Resolve(config.BosToken);
        EosId = Resolve(config.EosToken);
        PadId = Resolve(config.PadToken);
        ApplyAddBosEos(file);
    }

    /// <summary>
    /// transformers' Llama/Gemma fast tokenizers rebuild the post-processor from add_bos_token (default true) and
    /// add_eos_token (default false) in tokenizer_config.json; so does this, for those tokenizer classes.
    /// </summary>
    void ApplyAddBosEos(string file)
    {
        string cls = (Config.TokenizerClass ?? "").Replace("Fast", "", StringComparison.Ordinal);
        if (cls is not ("LlamaTokenizer" or "CodeLlamaTokenizer" or "GemmaTokenizer")) return;
        bool addBos = Config.AddBosToken ?? true, addEos = Config.AddEosToken ?? false;
        if (addBos && BosId == null) throw new PeftException($"{file}: add_bos_token is set but bos_token \"{Config.BosToken}\" is not a token");
        if (addEos && EosId == null) throw new PeftException($"{file}: add_eos_token is set but eos_token \"{Config.EosToken}\" is not a token");
        var template = new List<int[]?>();
        if (addBos) template.Add([BosId!.Value]);
        template.Add(null);
        if (addEos) template.Add([EosId!.Value]);
        postProcessor = new TemplatePostProcessor(template.ToArray());
    }

    /// <summary>The model folder's name; a generic folder name ("models", "tokenizer") gives its parent's name.</summary>
    static string NameOf(string file)
    {
        var dir = new DirectoryInfo(Path.GetDirectoryName(Path.GetFullPath(file))!);
        if (dir.Name is "models" or "model" or "tokenizer" && dir.Parent != null) dir = dir.Parent;
        return dir.Name;
    }

    static JsonElement OrNull(JsonElement root, string name) => JsonUtil.Prop(root, name);

    int? Resolve(string? token) => token != null && tokenToId.TryGetValue(token, out int id) ? id : null;

    /// <summary>Loads a model folder (tokenizer.json and, when present, tokenizer_config.json) or a tokenizer.json path.</summary>
    public static HfTokenizer Load(string dirOrFile)
    {
        if (IO.Gguf.GgufModelLoader.IsGguf(dirOrFile)) return IO.Gguf.GgufTokenizerLoader.Load(dirOrFile);
        string file, configPath;
        if (Directory.Exists(dirOrFile))
        {
            file = Path.Combine(dirOrFile, "tokenizer.json");
            if (!File.Exists(file)) throw new PeftException($"{file}: not found (the folder needs a Hugging Face tokenizer.json)");
            configPath = Path.Combine(dirOrFile, "tokenizer_config.json");
        }
        else if (File.Exists(dirOrFile))
        {
            file = dirOrFile;
            configPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(dirOrFile))!, "tokenizer_config.json");
        }
        else throw new PeftException($"{dirOrFile}: no such folder or tokenizer.json file");

        var config = File.Exists(configPath) ? TokenizerConfig.Load(configPath) : TokenizerConfig.Empty;
        return FromJson(File.ReadAllBytes(file), file, config);
    }

    /// <summary>Builds a tokenizer from tokenizer.json bytes; <paramref name="file"/> names it in error messages.</summary>
    internal static HfTokenizer FromJson(ReadOnlyMemory<byte> json, string file, TokenizerConfig? config = null)
    {
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 256 });
            return new HfTokenizer(doc.RootElement, file, config ?? TokenizerConfig.Empty);
        }
        catch (JsonException e)
        {
            throw new PeftException($"{file}: not valid JSON (line {e.LineNumber + 1}): {e.Message}", e);
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException or IndexOutOfRangeException)
        {
            throw new PeftException($"{file}: unexpected structure: {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public int[] Encode(string text, bool addSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        var segments = new List<Segment>();
        if (rawMatcher.IsEmpty) segments.Add(new Segment(0, text.Length, -1));
        else rawMatcher.Split(text, 0, text.Length, segments);

        var scratch = new EncodeScratch();
        bool first = true;
        foreach (var seg in segments)
        {
            if (seg.Id >= 0) ids.Add(seg.Id);
            else EncodePlain(seg.Start == 0 && seg.Length == text.Length ? text : text.Substring(seg.Start, seg.Length), first, ids, scratch);
            first = false;
        }
        return postProcessor?.Process(ids, addSpecial) ?? ids.ToArray();
    }

    sealed class EncodeScratch
    {
        public readonly List<Piece> Pieces = new();
        public readonly List<Segment> Segments = new();
        public char[] Chars = new char[256];
        public byte[] Bytes = new byte[256];
    }

    void EncodePlain(string text, bool firstSection, List<int> ids, EncodeScratch scratch)
    {
        if (text.Length == 0) return;
        if (normalizer != null) text = normalizer.Normalize(text);
        if (!normalizedMatcher.IsEmpty)
        {
            var segs = new List<Segment>();
            normalizedMatcher.Split(text, 0, text.Length, segs);
            foreach (var s in segs)
            {
                if (s.Id >= 0) ids.Add(s.Id);
                else PreTokenizeAndEncode(new Piece(text, s.Start, s.Length), firstSection && s.Start == 0, ids, scratch);
            }
        }
        else PreTokenizeAndEncode(new Piece(text, 0, text.Length), firstSection, ids, scratch);
    }

    void PreTokenizeAndEncode(Piece piece, bool firstSection, List<int> ids, EncodeScratch scratch)
    {
        if (piece.Length == 0) return;
        var pieces = scratch.Pieces;
        pieces.Clear();
        if (preTokenizer == null) pieces.Add(piece);
        else preTokenizer.Split(piece, pieces, isLast: true, firstSection);

        foreach (var p in pieces)
        {
            if (!byteLevelInput) { model.Tokenize(p.Span, ids); continue; }
            int max = p.Length * 3;
            if (scratch.Chars.Length < max) { scratch.Chars = new char[max * 2]; scratch.Bytes = new byte[max * 2]; }
            int n = ByteLevelEncoding.MapInto(p.Span, scratch.Chars, scratch.Bytes);
            model.Tokenize(scratch.Chars.AsSpan(0, n), ids);
        }
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecial = false)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            if (skipSpecial && IsSpecial(id)) continue;
            tokens.Add(IdToToken(id));
        }
        if (decoder == null) return string.Join(" ", tokens);
        return string.Concat(decoder.DecodeChain(tokens));
    }

    /// <inheritdoc/>
    public string IdToToken(int id)
    {
        if ((uint)id >= (uint)idToToken.Length || idToToken[id] is not { } tok)
            throw new PeftException($"{SourcePath}: token id {id} is not in the vocabulary (size {VocabSize})");
        return tok;
    }

    /// <summary>The id of a token string (vocabulary or added token), or null.</summary>
    public int? TokenToId(string token) => tokenToId.TryGetValue(token, out int id) ? id : null;

    /// <summary>True for added tokens marked "special" (skipped by Decode with skipSpecial).</summary>
    public bool IsSpecial(int id) => (uint)id < (uint)isSpecial.Length && isSpecial[id];
}
