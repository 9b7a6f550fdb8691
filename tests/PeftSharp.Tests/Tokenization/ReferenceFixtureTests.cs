namespace PeftSharp.Tests.Tokenization;

/// <summary>
/// Every id must match the independent reference (@lenml/tokenizers, a transformers.js fork, run by
/// tests/fixtures/tokenizers/make-fixtures.mjs) on the real Llama 2 / Llama 3 / Qwen3 / Gemma 2 / Gemma 3 files.
/// </summary>
public class ReferenceFixtureTests
{
    public static IEnumerable<object[]> Cases() =>
        TokenizerFiles.Names.SelectMany(n => Enumerable.Range(0, TokenizerFiles.Fixture(n).Length).Select(i => new object[] { n, i }));

    [Theory]
    [MemberData(nameof(Cases))]
    public void EncodeMatchesReference(string name, int index)
    {
        var c = TokenizerFiles.Fixture(name)[index];
        var tok = TokenizerFiles.Load(name);
        AssertIds(c.Ids, tok.Encode(c.Text, addSpecial: true), name, c, "with special tokens");
        AssertIds(c.IdsNoSpecial, tok.Encode(c.Text, addSpecial: false), name, c, "without special tokens");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void DecodeMatchesReference(string name, int index)
    {
        var c = TokenizerFiles.Fixture(name)[index];
        var tok = TokenizerFiles.Load(name);
        Assert.Equal(c.Decoded, tok.Decode(c.IdsNoSpecial));
        Assert.Equal(c.DecodedSkipSpecial, tok.Decode(c.Ids, skipSpecial: true));
    }

    static void AssertIds(int[] expected, int[] actual, string name, TokenizerFiles.Case c, string what)
    {
        if (expected.AsSpan().SequenceEqual(actual)) return;
        int first = 0;
        while (first < Math.Min(expected.Length, actual.Length) && expected[first] == actual[first]) first++;
        string text = c.Text.Length > 120 ? c.Text[..120] + "…" : c.Text;
        Assert.Fail($"{name} [{c.Kind}] {what}: ids differ at index {first} (expected {expected.Length} ids, got {actual.Length})\n" +
                    $"text: {System.Text.Json.JsonSerializer.Serialize(text)}\n" +
                    $"expected: [{string.Join(",", expected.Skip(Math.Max(0, first - 3)).Take(12))}]\n" +
                    $"actual:   [{string.Join(",", actual.Skip(Math.Max(0, first - 3)).Take(12))}]");
    }
}
