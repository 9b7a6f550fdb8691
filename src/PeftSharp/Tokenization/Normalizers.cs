using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace PeftSharp.Tokenization;

/// <summary>A tokenizer.json "normalizer": rewrites one piece of text (between added tokens) before pre-tokenization.</summary>
internal abstract class Normalizer
{
    public abstract string Normalize(string text);

    public static Normalizer? FromJson(JsonElement e, string file)
    {
        if (e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined) return null;
        string type = JsonUtil.Type(e, file, "normalizer");
        switch (type)
        {
            case "Sequence":
                return new SequenceNormalizer(e.GetProperty("normalizers").EnumerateArray()
                    .Select(x => FromJson(x, file)).OfType<Normalizer>().ToArray());
            case "Prepend": return new PrependNormalizer(e.GetProperty("prepend").GetString()!);
            case "Replace": return new ReplaceNormalizer(Pattern.FromJson(e.GetProperty("pattern"), file), e.GetProperty("content").GetString()!);
            case "NFC": return new UnicodeNormalizer(NormalizationForm.FormC);
            case "NFD": return new UnicodeNormalizer(NormalizationForm.FormD);
            case "NFKC": return new UnicodeNormalizer(NormalizationForm.FormKC);
            case "NFKD": return new UnicodeNormalizer(NormalizationForm.FormKD);
            case "Lowercase": return new LowercaseNormalizer();
            case "Strip":
                return new StripNormalizer(JsonUtil.Bool(e, "left", true), JsonUtil.Bool(e, "right", true));
            default: throw new PeftException($"{file}: unsupported normalizer type '{type}'");
        }
    }
}

internal sealed class SequenceNormalizer(Normalizer[] parts) : Normalizer
{
    public override string Normalize(string text)
    {
        foreach (var p in parts) text = p.Normalize(text);
        return text;
    }
}

/// <summary>Prepends a string to every non-empty piece (Llama 2 prepends "▁" this way, also after added tokens).</summary>
internal sealed class PrependNormalizer(string prefix) : Normalizer
{
    public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

internal sealed class ReplaceNormalizer(Pattern pattern, string content) : Normalizer
{
    public override string Normalize(string text) => pattern.Replace(text, content);
}

internal sealed class UnicodeNormalizer(NormalizationForm form) : Normalizer
{
    // Not string.Normalize: under InvariantGlobalization (this project's setting) it leaves text unchanged.
    public override string Normalize(string text) => UnicodeNormalization.Normalize(text, form);
}

internal sealed class LowercaseNormalizer : Normalizer
{
    public override string Normalize(string text) => text.ToLowerInvariant();
}

internal sealed class StripNormalizer(bool left, bool right) : Normalizer
{
    public override string Normalize(string text) =>
        left && right ? text.Trim() : left ? text.TrimStart() : right ? text.TrimEnd() : text;
}

/// <summary>A tokenizer.json pattern: {"String": literal} or {"Regex": pattern}. The regex is compiled on first use:
/// the common split patterns are run by <see cref="SplitPatternScanner"/> and never need it.</summary>
internal sealed class Pattern
{
    Regex? regex;

    public string? Literal { get; private init; }
    public string? RegexSource { get; private init; }
    string File { get; init; } = "";

    public Regex? Regex => RegexSource == null ? null : regex ??= RegexFactory.Create(RegexSource, File);

    public static Pattern FromJson(JsonElement e, string file)
    {
        if (e.TryGetProperty("String", out var s)) return new Pattern { Literal = s.GetString()!, File = file };
        if (e.TryGetProperty("Regex", out var r))
        {
            var p = new Pattern { RegexSource = r.GetString()!, File = file };
            if (SplitPatternScanner.For(p.RegexSource) == null) _ = p.Regex; // report a bad pattern at load time
            return p;
        }
        throw new PeftException($"{file}: pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}, got {e.GetRawText()}");
    }

    public string Replace(string text, string content)
    {
        if (Literal != null) return Literal.Length == 0 ? text : text.Replace(Literal, content, StringComparison.Ordinal);
        try { return Regex!.Replace(text, content.Replace("$", "$$")); }
        catch (RegexMatchTimeoutException e) { throw RegexFactory.Timeout(RegexSource!, File, e); }
    }

    /// <summary>Adds the non-empty matches in <paramref name="text"/> as (start, length).</summary>
    public void AddRegexMatches(ReadOnlySpan<char> text, List<(int, int)> matches)
    {
        try
        {
            foreach (var m in Regex!.EnumerateMatches(text))
                if (m.Length > 0) matches.Add((m.Index, m.Length));
        }
        catch (RegexMatchTimeoutException e) { throw RegexFactory.Timeout(RegexSource!, File, e); }
    }

    /// <summary>Match ranges (start, length), left to right, non-overlapping.</summary>
    public IEnumerable<(int Start, int Length)> Matches(string text)
    {
        if (Literal != null)
        {
            if (Literal.Length == 0) yield break;
            int i = 0;
            while ((i = text.IndexOf(Literal, i, StringComparison.Ordinal)) >= 0) { yield return (i, Literal.Length); i += Literal.Length; }
        }
        else
        {
            var found = new List<(int, int)>();
            AddRegexMatches(text, found);
            foreach (var m in found) yield return m;
        }
    }
}

/// <summary>Compiles the Oniguruma-style patterns tokenizer files use with the .NET engine. A pattern the linear-time
/// engine (<see cref="RegexOptions.NonBacktracking"/>, same matches as the backtracking engine) can run uses it, so no
/// input makes it backtrack for ever; one it cannot run (lookarounds, backreferences, atomic groups, as in the GPT-2
/// pattern's <c>\s+(?!\S)</c>) gets the backtracking engine with a match timeout that ends in a clear error.</summary>
internal static class RegexFactory
{
    /// <summary>Time one match may take in the backtracking engine before the text is refused.</summary>
    public static readonly TimeSpan BacktrackingTimeout = TimeSpan.FromSeconds(5);

    public static Regex Create(string pattern, string file)
    {
        // CultureInvariant: (?i:'s|'t|...) must fold case the same way on every machine.
        try
        {
            return new Regex(pattern, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
        }
        catch (NotSupportedException) { }
        catch (ArgumentException) { }   // a syntax error is reported by the backtracking parse below
        try
        {
            return new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant, BacktrackingTimeout);
        }
        catch (ArgumentException e)
        {
            throw new PeftException($"{file}: regex pattern '{pattern}' is not supported: {e.Message}", e);
        }
    }

    /// <summary>The error for a pattern that backtracked past <see cref="BacktrackingTimeout"/> on some text.</summary>
    public static PeftException Timeout(string pattern, string file, RegexMatchTimeoutException e) =>
        new($"{file}: regex pattern '{pattern}' took more than {BacktrackingTimeout.TotalSeconds:0} s on one piece of text " +
            "(catastrophic backtracking); rewrite the pattern without nested repetition", e);
}
