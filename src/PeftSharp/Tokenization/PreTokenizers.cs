using System.Text.Json;
using System.Text.RegularExpressions;

namespace PeftSharp.Tokenization;

/// <summary>A slice of a string: one pre-token, without copying it.</summary>
internal readonly record struct Piece(string Text, int Start, int Length)
{
    public ReadOnlySpan<char> Span => Text.AsSpan(Start, Length);
}

/// <summary>
/// A tokenizer.json "pre_tokenizer": splits one piece into pre-tokens (each is encoded by the model on its own).
/// A byte-level pre-tokenizer that comes last in the chain leaves its byte→char mapping to the caller
/// (<see cref="EndsWithByteLevel"/>), so pre-tokens stay slices of the input and nothing is allocated per pre-token.
/// </summary>
internal abstract class PreTokenizer
{
    /// <summary>Appends the pre-tokens of <paramref name="piece"/> to <paramref name="output"/>; empty ones are dropped.</summary>
    public abstract void Split(Piece piece, List<Piece> output, bool isLast, bool firstSection);

    /// <summary>True when the chain's final step is a byte-level mapping the caller must apply to each pre-token.</summary>
    public virtual bool EndsWithByteLevel => false;

    public static PreTokenizer? FromJson(JsonElement e, string file)
    {
        if (e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined) return null;
        string type = JsonUtil.Type(e, file, "pre_tokenizer");
        switch (type)
        {
            case "Sequence":
                return new SequencePreTokenizer(e.GetProperty("pretokenizers").EnumerateArray()
                    .Select(x => FromJson(x, file)).OfType<PreTokenizer>().ToArray());
            case "Split":
                return new SplitPreTokenizer(Pattern.FromJson(e.GetProperty("pattern"), file),
                    ParseBehavior(JsonUtil.String(e, "behavior") ?? "Isolated", file), JsonUtil.Bool(e, "invert", false));
            case "ByteLevel":
                return new ByteLevelPreTokenizer(JsonUtil.Bool(e, "add_prefix_space", true), JsonUtil.Bool(e, "use_regex", true));
            case "Metaspace":
                return new MetaspacePreTokenizer(JsonUtil.String(e, "replacement") ?? "▁",
                    JsonUtil.String(e, "prepend_scheme") ?? (JsonUtil.Bool(e, "add_prefix_space", true) ? "always" : "never"),
                    JsonUtil.Bool(e, "split", true));
            default: throw new PeftException($"{file}: unsupported pre_tokenizer type '{type}'");
        }
    }

    static SplitBehavior ParseBehavior(string s, string file) => s switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        _ => throw new PeftException($"{file}: unsupported Split behavior '{s}'"),
    };

    /// <summary>Cuts <paramref name="piece"/> at the given match ranges (relative to the piece) as HF's SplitDelimiterBehavior does.</summary>
    protected static void SplitByMatches(Piece piece, List<(int Start, int Length)> matches, SplitBehavior behavior, bool invert, List<Piece> output)
    {
        // Segments covering the piece: (start, length, isDelimiter).
        var segments = new List<(int S, int L, bool D)>(matches.Count * 2 + 1);
        int pos = 0;
        foreach (var (s, l) in matches)
        {
            if (s > pos) segments.Add((pos, s - pos, invert));
            segments.Add((s, l, !invert));
            pos = s + l;
        }
        if (pos < piece.Length) segments.Add((pos, piece.Length - pos, invert));

        void Emit(int s, int l) { if (l > 0) output.Add(new Piece(piece.Text, piece.Start + s, l)); }
        switch (behavior)
        {
            case SplitBehavior.Removed:
                foreach (var g in segments) if (!g.D) Emit(g.S, g.L);
                break;
            case SplitBehavior.Isolated:
                foreach (var g in segments) Emit(g.S, g.L);
                break;
            case SplitBehavior.MergedWithPrevious:
            {
                int start = 0;
                foreach (var g in segments)
                    if (g.D) { Emit(start, g.S + g.L - start); start = g.S + g.L; }
                Emit(start, piece.Length - start);
                break;
            }
            case SplitBehavior.MergedWithNext:
            {
                int start = 0;
                foreach (var g in segments)
                    if (g.D) { Emit(start, g.S - start); start = g.S; }
                Emit(start, piece.Length - start);
                break;
            }
            case SplitBehavior.Contiguous:
            {
                int start = 0;
                bool prevD = false;
                foreach (var g in segments)
                {
                    if (g.D && prevD) { prevD = true; continue; }
                    Emit(start, g.S - start);
                    start = g.S;
                    prevD = g.D;
                }
                Emit(start, piece.Length - start);
                break;
            }
        }
    }
}

internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

internal sealed class SequencePreTokenizer(PreTokenizer[] steps) : PreTokenizer
{
    public override bool EndsWithByteLevel => steps.Length > 0 && steps[^1].EndsWithByteLevel;

    public override void Split(Piece piece, List<Piece> output, bool isLast, bool firstSection)
    {
        var current = new List<Piece> { piece };
        var next = new List<Piece>();
        for (int i = 0; i < steps.Length; i++)
        {
            next.Clear();
            bool last = isLast && i == steps.Length - 1;
            foreach (var p in current) steps[i].Split(p, next, last, firstSection);
            (current, next) = (next, current);
        }
        output.AddRange(current);
    }
}

/// <summary>Split with a regex or literal. Uses span enumeration so lookarounds see only the piece (as HF does).</summary>
internal sealed class SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert) : PreTokenizer
{
    readonly SplitPatternScanner? scanner = pattern.RegexSource != null ? SplitPatternScanner.For(pattern.RegexSource) : null;

    public override void Split(Piece piece, List<Piece> output, bool isLast, bool firstSection)
    {
        var matches = new List<(int, int)>();   // per call: tokenizers may run on several threads at once
        if (scanner != null) scanner.Scan(piece.Span, matches);
        else if (pattern.Regex is { } regex)
        {
            foreach (var m in regex.EnumerateMatches(piece.Span))
                if (m.Length > 0) matches.Add((m.Index, m.Length));
        }
        else
        {
            foreach (var m in pattern.Matches(piece.Span.ToString())) matches.Add(m);
        }
        if (!invert && behavior == SplitBehavior.Isolated && matches.Count > 0 && IsCovering(matches, piece.Length))
        {
            // Fast path (GPT-2/Llama 3/Qwen patterns match every character): matches are the pieces.
            foreach (var (s, l) in matches) output.Add(new Piece(piece.Text, piece.Start + s, l));
            return;
        }
        SplitByMatches(piece, matches, behavior, invert, output);
    }

    static bool IsCovering(List<(int S, int L)> matches, int length)
    {
        int pos = 0;
        foreach (var (s, l) in matches) { if (s != pos) return false; pos = s + l; }
        return pos == length;
    }
}

/// <summary>
/// GPT-2 byte-level pre-tokenizer: optional prefix space, optional GPT-2 split regex, then every UTF-8 byte is mapped
/// to its printable stand-in (<see cref="ByteLevelAlphabet"/>). When last in the chain the mapping is left to the caller.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public override bool EndsWithByteLevel => true;

    public override void Split(Piece piece, List<Piece> output, bool isLast, bool firstSection)
    {
        if (addPrefixSpace && (piece.Length == 0 || piece.Span[0] != ' '))
            piece = new Piece(" " + piece.Span.ToString(), 0, piece.Length + 1);
        if (isLast)
        {
            // The caller maps bytes; pre-tokens stay slices of the input.
            AddParts(piece, output);
            return;
        }
        var parts = new List<Piece>();
        AddParts(piece, parts);
        foreach (var p in parts)
        {
            var mapped = ByteLevelEncoding.Map(p.Span);
            output.Add(new Piece(mapped, 0, mapped.Length));
        }
    }

    static readonly SplitPatternScanner Gpt2Scanner = SplitPatternScanner.For(Gpt2Pattern)!;

    void AddParts(Piece piece, List<Piece> output)
    {
        if (!useRegex) { if (piece.Length > 0) output.Add(piece); return; }
        var matches = new List<(int, int)>();   // per call: tokenizers may run on several threads at once
        Gpt2Scanner.Scan(piece.Span, matches);
        foreach (var (s, l) in matches) output.Add(new Piece(piece.Text, piece.Start + s, l));
    }
}

/// <summary>SentencePiece-style: spaces become "▁", a "▁" is prepended, and the text is split before each "▁".</summary>
internal sealed class MetaspacePreTokenizer(string replacement, string prependScheme, bool split) : PreTokenizer
{
    public override void Split(Piece piece, List<Piece> output, bool isLast, bool firstSection)
    {
        string s = piece.Span.ToString().Replace(" ", replacement, StringComparison.Ordinal);
        // prepend_scheme "first" prepends only to the text before the first added token.
        bool prepend = prependScheme == "always" || (prependScheme == "first" && firstSection);
        if (prepend && !s.StartsWith(replacement, StringComparison.Ordinal)) s = replacement + s;
        if (!split) { if (s.Length > 0) output.Add(new Piece(s, 0, s.Length)); return; }
        int start = 0;
        for (int i = 1; i <= s.Length; i++)
        {
            if (i == s.Length || string.CompareOrdinal(s, i, replacement, 0, replacement.Length) == 0)
            {
                if (i > start) output.Add(new Piece(s, start, i - start));
                start = i;
            }
        }
    }
}
