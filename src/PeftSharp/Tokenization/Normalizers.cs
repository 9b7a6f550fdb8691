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

    public string Replace(string text, string content) =>
        Literal != null ? (Literal.Length == 0 ? text : text.Replace(Literal, content, StringComparison.Ordinal))
                        : Regex!.Replace(text, content.Replace("$", "$$"));

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
            for (var m = Regex!.Match(text); m.Success; m = m.NextMatch())
                if (m.Length > 0) yield return (m.Index, m.Length);
        }
    }
}

/// <summary>Compiles the Oniguruma-style patterns tokenizer files use with the .NET engine.</summary>
internal static class RegexFactory
{
    public static Regex Create(string pattern, string file)
    {
        try
        {
            // CultureInvariant: (?i:'s|'t|...) must fold case the same way on every machine.
            return new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new PeftException($"{file}: regex pattern '{pattern}' is not supported: {e.Message}", e);
        }
    }
}
