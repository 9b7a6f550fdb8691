using System.Globalization;

namespace PeftSharp.Tokenization;

/// <summary>
/// Hand-written matcher for the three split regexes real byte-level tokenizers use (GPT-2, Llama 3, Qwen 2/3),
/// giving the matches the ordered-alternation regex gives, but over code points: .NET's Regex sees UTF-16 units, so
/// an astral letter or digit (𝒜, 𠀀, 𝟘) would not be \p{L}/\p{N} there, unlike in HF's Oniguruma. Also faster.
///   Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///   Qwen:    the same with \p{N} (one digit per match)
///   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// \s is Unicode White_Space (as in Oniguruma and .NET; not U+FEFF, unlike JavaScript).
/// </summary>
internal sealed class SplitPatternScanner
{
    public const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string QwenPattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    enum Kind { Gpt2, Llama3 }

    readonly Kind kind;
    readonly int maxDigits;

    SplitPatternScanner(Kind kind, int maxDigits) { this.kind = kind; this.maxDigits = maxDigits; }

    /// <summary>A scanner for a known pattern, or null (the caller then uses the regex engine).</summary>
    public static SplitPatternScanner? For(string pattern) => pattern switch
    {
        Llama3Pattern => new SplitPatternScanner(Kind.Llama3, 3),
        QwenPattern => new SplitPatternScanner(Kind.Llama3, 1),
        ByteLevelPreTokenizer.Gpt2Pattern => new SplitPatternScanner(Kind.Gpt2, int.MaxValue),
        _ => null,
    };

    // Character classes.
    const byte Other = 0, Letter = 1, Number = 2, Space = 3, NewLine = 4; // NewLine (\r, \n) is also whitespace

    static readonly byte[] Bmp = BuildBmp();

    static byte[] BuildBmp()
    {
        var t = new byte[0x10000];
        for (int c = 0; c < 0x10000; c++) t[c] = c is >= 0xD800 and <= 0xDFFF ? Other : Classify(c);
        return t;
    }

    static byte Classify(int cp)
    {
        if (cp == '\r' || cp == '\n') return NewLine;
        if (IsWhiteSpace(cp)) return Space;
        switch (CharUnicodeInfo.GetUnicodeCategory(cp))
        {
            case UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter:
                return Letter;
            case UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber:
                return Number;
            default: return Other;
        }
    }

    /// <summary>Unicode White_Space.</summary>
    static bool IsWhiteSpace(int c) =>
        c is >= 0x09 and <= 0x0D or 0x20 or 0x85 or 0xA0 or 0x1680 or (>= 0x2000 and <= 0x200A) or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    /// <summary>Class of the code point at <paramref name="i"/> and its UTF-16 length (0 at the end).</summary>
    static byte At(ReadOnlySpan<char> s, int i, out int width)
    {
        if (i >= s.Length) { width = 0; return 255; }
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            width = 2;
            return Classify(char.ConvertToUtf32(c, s[i + 1]));
        }
        width = 1;
        return Bmp[c];
    }

    static bool IsSpace(byte k) => k is Space or NewLine;

    /// <summary>Appends (start, length) of every match, left to right. The patterns match every character.</summary>
    public void Scan(ReadOnlySpan<char> s, List<(int, int)> matches)
    {
        int i = 0;
        while (i < s.Length)
        {
            int len = kind == Kind.Llama3 ? MatchLlama3(s, i) : MatchGpt2(s, i);
            matches.Add((i, len));
            i += len;
        }
    }

    int Run(ReadOnlySpan<char> s, int i, byte cls, int maxCount = int.MaxValue)
    {
        int j = i, n = 0;
        while (n < maxCount && At(s, j, out int w) == cls && w > 0) { j += w; n++; }
        return j;
    }

    int RunWhere(ReadOnlySpan<char> s, int i, Func<byte, bool> pred)
    {
        int j = i;
        while (true)
        {
            byte k = At(s, j, out int w);
            if (w == 0 || !pred(k)) return j;
            j += w;
        }
    }

    static int Contraction(ReadOnlySpan<char> s, int i, bool ignoreCase)
    {
        if (s[i] != '\'' || i + 1 >= s.Length) return 0;
        char a = s[i + 1];
        char b = i + 2 < s.Length ? s[i + 2] : '\0';
        if (ignoreCase)
        {
            a = FoldAscii(a);
            b = FoldAscii(b);
        }
        if (a is 's' or 't' or 'm' or 'd') return 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
        return 0;
    }

    // Simple case folding for the contraction letters: ASCII upper case and U+017F (long s, folds to s).
    static char FoldAscii(char c) => c is >= 'A' and <= 'Z' ? (char)(c + 32) : c == '\u017F' ? 's' : c;

    int MatchLlama3(ReadOnlySpan<char> s, int i)
    {
        int c = Contraction(s, i, ignoreCase: true);
        if (c > 0) return c;
        byte k = At(s, i, out int w);
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (k == Letter) return Run(s, i, Letter) - i;
        if (k is Other or Space && At(s, i + w, out _) == Letter) return Run(s, i + w, Letter) - i;
        // \p{N}{1,maxDigits}
        if (k == Number) return Run(s, i, Number, maxDigits) - i;
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        int p = s[i] == ' ' && At(s, i + 1, out _) == Other ? i + 1 : i;
        if (At(s, p, out _) == Other)
        {
            int j = Run(s, p, Other);
            return Run(s, j, NewLine) - i;
        }
        // Whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+
        int end = RunWhere(s, i, IsSpace);
        for (int q = end - 1; q >= i; q--) // the last \r or \n in the run ends \s*[\r\n]+
            if (s[q] is '\r' or '\n') return q + 1 - i;
        return WhitespaceTail(s, i, end);
    }

    int MatchGpt2(ReadOnlySpan<char> s, int i)
    {
        int c = Contraction(s, i, ignoreCase: false);
        if (c > 0) return c;
        int p = s[i] == ' ' ? i + 1 : i;
        byte k = At(s, p, out _);
        if (p < s.Length && k is Letter or Number or Other) return Run(s, p, k) - i; // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
        int end = RunWhere(s, i, IsSpace);
        return WhitespaceTail(s, i, end);
    }

    /// <summary>\s+(?!\S) then \s+ on the whitespace run [i, end): before a non-space, leave its last character.</summary>
    static int WhitespaceTail(ReadOnlySpan<char> s, int i, int end)
    {
        if (end >= s.Length) return end - i;
        // Step back one code point (whitespace is BMP, so one char).
        return end - 1 > i ? end - 1 - i : end - i;
    }
}
