using System.Text;
using System.Text.Json;
using PeftSharp.Tokenization;

namespace PeftSharp.Tests.Tokenization;

/// <summary>The C# NFC/NFD/NFKC/NFKD against JavaScript's String.normalize (ICU), recorded by make-fixtures.mjs.</summary>
public class UnicodeNormalizationTests
{
    [Fact]
    public void AllFormsMatchIcuOnFixtureStrings()
    {
        string path = Path.Combine(TokenizerFiles.RepoRoot, "tests", "fixtures", "tokenizers", "normalization.expected.json");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        int checkedCount = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            string text = c.GetProperty("text").GetString()!;
            foreach (var (key, form) in new[] { ("nfc", NormalizationForm.FormC), ("nfd", NormalizationForm.FormD),
                         ("nfkc", NormalizationForm.FormKC), ("nfkd", NormalizationForm.FormKD) })
            {
                string expected = c.GetProperty(key).GetString()!;
                string actual = UnicodeNormalization.Normalize(text, form);
                Assert.True(expected == actual, $"{key} of {JsonSerializer.Serialize(text)}: expected {JsonSerializer.Serialize(expected)}, got {JsonSerializer.Serialize(actual)}");
                checkedCount++;
            }
        }
        Assert.True(checkedCount > 400);
    }

    [Theory]
    [InlineData("e\u0301", "\u00e9")]                    // compose with the preceding starter
    [InlineData("\u1100\u1161\u11a8", "\uac01")]          // Hangul L+V+T, algorithmic
    [InlineData("A\u0323\u0307", "\u1ea0\u0307")]         // dot below (220) sorts before dot above (230) and composes first
    [InlineData("\u212b", "\u00c5")]                     // singleton decomposition (Ångström sign)
    [InlineData("\u0958", "\u0915\u093c")]                // composition exclusion stays decomposed
    public void NfcKnownValues(string input, string expected) =>
        Assert.Equal(expected, UnicodeNormalization.Normalize(input, NormalizationForm.FormC));

    [Fact]
    public void AsciiIsReturnedUnchanged()
    {
        string s = "plain ascii text 123";
        Assert.Same(s, UnicodeNormalization.Normalize(s, NormalizationForm.FormC));
    }
}
