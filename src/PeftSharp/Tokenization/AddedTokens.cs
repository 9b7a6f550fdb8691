using System.Buffers;
using System.Text.Json;

namespace PeftSharp.Tokenization;

/// <summary>One entry of tokenizer.json "added_tokens".</summary>
internal sealed record AddedToken(int Id, string Content, bool Special, bool SingleWord, bool LStrip, bool RStrip, bool Normalized)
{
    public static AddedToken FromJson(JsonElement e, string file, int index)
    {
        string? content = JsonUtil.String(e, "content");
        if (content == null || !e.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.Number)
            throw new PeftException($"{file}: added_tokens[{index}] needs \"id\" (number) and \"content\" (string), got {JsonUtil.Short(e)}");
        bool special = JsonUtil.Bool(e, "special", false);
        return new AddedToken(JsonUtil.TokenId(id, file, $"added_tokens[{index}]"), content, special, JsonUtil.Bool(e, "single_word", false),
            JsonUtil.Bool(e, "lstrip", false), JsonUtil.Bool(e, "rstrip", false), JsonUtil.Bool(e, "normalized", !special));
    }
}

/// <summary>A span of text: either an added token (Id ≥ 0) or plain text for the normalizer and model (Id = -1).</summary>
internal readonly record struct Segment(int Start, int Length, int Id);

/// <summary>
/// Finds added tokens in text before the model runs, leftmost-longest (HF uses Aho-Corasick LeftmostLongest),
/// honouring single_word (no word character on either side), lstrip and rstrip (the token swallows adjacent whitespace).
/// </summary>
internal sealed class AddedTokenMatcher
{
    sealed class Node
    {
        public Dictionary<char, Node>? Children;
        public AddedToken? Token;
    }

    readonly Node root = new();
    readonly SearchValues<char> firstChars;
    public bool IsEmpty { get; }

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        var first = new HashSet<char>();
        foreach (var t in tokens)
        {
            if (t.Content.Length == 0) continue;
            var node = root;
            foreach (char c in t.Content)
            {
                node.Children ??= new Dictionary<char, Node>();
                if (!node.Children.TryGetValue(c, out var child)) node.Children[c] = child = new Node();
                node = child;
            }
            node.Token ??= t;
            first.Add(t.Content[0]);
        }
        IsEmpty = first.Count == 0;
        firstChars = SearchValues.Create(first.ToArray());
    }

    /// <summary>Splits <paramref name="text"/>[start, start+length) into plain-text and added-token segments; no empty plain segment is emitted.</summary>
    public void Split(string text, int start, int length, List<Segment> output)
    {
        int end = start + length;
        int plainStart = start;
        int i = start;
        while (i < end)
        {
            int rel = text.AsSpan(i, end - i).IndexOfAny(firstChars);
            if (rel < 0) break;
            i += rel;
            var (token, matchLen) = LongestAt(text, i, end);
            if (token == null || (token.SingleWord && !IsWordBoundary(text, i, i + matchLen, start, end)))
            {
                i++;
                continue;
            }
            int s = i, e = i + matchLen;
            if (token.LStrip) while (s > plainStart && char.IsWhiteSpace(text[s - 1])) s--;
            if (token.RStrip) while (e < end && char.IsWhiteSpace(text[e])) e++;
            if (s > plainStart) output.Add(new Segment(plainStart, s - plainStart, -1));
            output.Add(new Segment(s, e - s, token.Id));
            plainStart = i = e;
        }
        if (end > plainStart) output.Add(new Segment(plainStart, end - plainStart, -1));
    }

    (AddedToken? Token, int Length) LongestAt(string text, int i, int end)
    {
        AddedToken? best = null;
        int bestLen = 0;
        var node = root;
        for (int j = i; j < end; j++)
        {
            if (node.Children == null || !node.Children.TryGetValue(text[j], out node)) break;
            if (node.Token != null) { best = node.Token; bestLen = j - i + 1; }
        }
        return (best, bestLen);
    }

    static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';

    static bool IsWordBoundary(string text, int s, int e, int lo, int hi) =>
        (s == lo || !IsWordChar(text[s - 1]) || !IsWordChar(text[s])) && (e == hi || !IsWordChar(text[e]) || !IsWordChar(text[e - 1]));
}
