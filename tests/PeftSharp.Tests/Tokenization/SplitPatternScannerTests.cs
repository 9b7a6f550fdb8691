using System.Text;
using System.Text.RegularExpressions;
using PeftSharp.Tokenization;

namespace PeftSharp.Tests.Tokenization;

/// <summary>The hand-written split scanner against the .NET regex engine running the same patterns (identical on BMP
/// text without surrogates), and against the Oniguruma code-point semantics on astral letters and digits.</summary>
public class SplitPatternScannerTests
{
    public static IEnumerable<object[]> Patterns() =>
    [
        [SplitPatternScanner.Llama3Pattern], [SplitPatternScanner.QwenPattern], [ByteLevelPreTokenizer.Gpt2Pattern],
    ];

    static readonly string[] Alphabet =
    [
        "a", "Z", "é", "ß", "日", "ا", "ह", "\u0301", "0", "7", "٣", "½", "Ⅻ", " ", " ", " ", "\t", "\n", "\r", "\u00a0", "\u3000",
        "\u2028", "\u0085", "\ufeff", ".", ",", "!", "'", "'", "s", "S", "t", "re", "RE", "ve", "m", "ll", "LL", "d", "D", "-", "_",
        "€", "©", "\u200d", "\u000b",
    ];
    // Not "ſ" (U+017F): .NET's (?i) does not fold it to "s"; Oniguruma's Unicode case folding does (see below).

    [Theory]
    [MemberData(nameof(Patterns))]
    public void ScannerMatchesRegexEngineOnRandomBmpText(string pattern)
    {
        var scanner = SplitPatternScanner.For(pattern)!;
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        var rng = new Random(pattern.Length);
        for (int trial = 0; trial < 2000; trial++)
        {
            var sb = new StringBuilder();
            int len = rng.Next(0, 24);
            for (int i = 0; i < len; i++) sb.Append(Alphabet[rng.Next(Alphabet.Length)]);
            string text = sb.ToString();
            var actual = new List<(int, int)>();
            scanner.Scan(text, actual);
            var expected = regex.Matches(text).Select(m => (m.Index, m.Length)).ToList();
            Assert.True(expected.SequenceEqual(actual),
                $"{System.Text.Json.JsonSerializer.Serialize(text)}: regex [{string.Join(" ", expected)}] scanner [{string.Join(" ", actual)}]");
        }
    }

    static List<string> Pieces(string pattern, string text)
    {
        var matches = new List<(int, int)>();
        SplitPatternScanner.For(pattern)!.Scan(text, matches);
        return matches.Select(m => text.Substring(m.Item1, m.Item2)).ToList();
    }

    [Fact]
    public void AstralLettersAndDigitsAreLettersAndDigits()
    {
        // Oniguruma (HF) classifies code points; .NET's regex would see two surrogates (category Cs) here.
        Assert.Equal(["a𠀀b", " 𝒜"], Pieces(SplitPatternScanner.Llama3Pattern, "a𠀀b 𝒜"));
        Assert.Equal(["𝟘𝟙𝟚", "𝟛"], Pieces(SplitPatternScanner.Llama3Pattern, "𝟘𝟙𝟚𝟛"));
        Assert.Equal(["𝟘", "𝟙"], Pieces(SplitPatternScanner.QwenPattern, "𝟘𝟙"));
        Assert.Equal(["x", "😀😀", " ", " 1"], Pieces(ByteLevelPreTokenizer.Gpt2Pattern, "x😀😀  1"));
    }

    [Fact]
    public void ContractionsFoldCaseLikeOniguruma()
    {
        // (?i:'s|…) in Oniguruma uses Unicode case folding, where U+017F LONG S folds to "s".
        // (The JavaScript reference rewrites the group as [sS] and .NET does not fold it; both would give "'ſt".)
        Assert.Equal(["'ſ", "t"], Pieces(SplitPatternScanner.Llama3Pattern, "'ſt"));
        Assert.Equal(["'S", "'Re", "'LL"], Pieces(SplitPatternScanner.Llama3Pattern, "'S'Re'LL"));
        Assert.Equal(["'", "S"], Pieces(ByteLevelPreTokenizer.Gpt2Pattern, "'S")); // GPT-2's pattern is case-sensitive
    }

    [Fact]
    public void UnknownPatternsUseTheRegexEngine() => Assert.Null(SplitPatternScanner.For(@"\s+"));
}
