using System.Text;
using System.Text.Json;
using PeftSharp.Tokenization;

namespace PeftSharp.Tests.Tokenization;

/// <summary>Components the three real files do not all exercise, on small synthetic tokenizers.</summary>
public class TokenizerComponentTests
{
    static List<string> SplitLiteral(string text, string behavior, bool invert = false)
    {
        var json = JsonDocument.Parse($$"""{"type":"Split","pattern":{"String":"-"},"behavior":"{{behavior}}","invert":{{(invert ? "true" : "false")}}}""");
        var pre = PreTokenizer.FromJson(json.RootElement, "t.json")!;
        var output = new List<Piece>();
        pre.Split(new Piece(text, 0, text.Length), output, isLast: true, firstSection: true);
        return output.Select(p => p.Span.ToString()).ToList();
    }

    // The example of HF's SplitDelimiterBehavior documentation: "the-final--countdown" split on "-".
    [Theory]
    [InlineData("Removed", "the|final|countdown")]
    [InlineData("Isolated", "the|-|final|-|-|countdown")]
    [InlineData("MergedWithPrevious", "the-|final-|-|countdown")]
    [InlineData("MergedWithNext", "the|-final|-|-countdown")]
    [InlineData("Contiguous", "the|-|final|--|countdown")]
    public void SplitBehaviors(string behavior, string expected) =>
        Assert.Equal(expected.Split('|'), SplitLiteral("the-final--countdown", behavior));

    // invert: the matches are what is kept and the text between them is the delimiter.
    [Fact]
    public void SplitInvertKeepsOnlyMatchesWhenRemoved() =>
        Assert.Equal(["-", "-", "-"], SplitLiteral("the-final--countdown", "Removed", invert: true));

    static HfTokenizer Tiny(string added, string normalizer = "null", string preTokenizer = "null", string decoder = "null")
    {
        // Character-level vocabulary a..z, space and "▁", no merges.
        var vocab = string.Join(",", "abcdefghijklmnopqrstuvwxyz ▁".Select((c, i) => $"\"{c}\":{i}"));
        string json = $$$"""{"added_tokens":{{{added}}},"normalizer":{{{normalizer}}},"pre_tokenizer":{{{preTokenizer}}},"post_processor":null,"decoder":{{{decoder}}},"model":{"type":"BPE","vocab":{{{{vocab}}}},"merges":[]}}""";
        return HfTokenizer.FromJson(Encoding.UTF8.GetBytes(json), "tiny.json");
    }

    static string Added(int id, string content, bool lstrip = false, bool rstrip = false, bool singleWord = false, bool special = true) =>
        $$"""{"id":{{id}},"content":"{{content}}","single_word":{{(singleWord ? "true" : "false")}},"lstrip":{{(lstrip ? "true" : "false")}},"rstrip":{{(rstrip ? "true" : "false")}},"normalized":false,"special":{{(special ? "true" : "false")}}}""";

    [Fact]
    public void AddedTokenStripsWhitespaceWhenAsked()
    {
        var tok = Tiny($"[{Added(100, "<m>", lstrip: true, rstrip: true)}]");
        Assert.Equal([0, 100, 1], tok.Encode("a  <m>  b")); // the spaces around <m> are swallowed
        var plain = Tiny($"[{Added(100, "<m>")}]");
        Assert.Equal([0, 26, 26, 100, 26, 26, 1], plain.Encode("a  <m>  b"));
    }

    [Fact]
    public void SingleWordAddedTokenNeedsWordBoundaries()
    {
        var tok = Tiny($"[{Added(100, "ab", singleWord: true, special: false)}]");
        Assert.Equal([100, 26, 2, 0, 1], tok.Encode("ab cab")); // "ab" inside "cab" is not the added token
    }

    [Fact]
    public void LongestAddedTokenWinsAtTheSamePosition()
    {
        var tok = Tiny($"[{Added(100, "<a>")},{Added(101, "<a><b>")}]");
        Assert.Equal([101, 0], tok.Encode("<a><b>a"));
        Assert.Equal([100, 0], tok.Encode("<a>a"));
    }

    [Fact]
    public void MetaspacePreTokenizerAndDecoder()
    {
        var tok = Tiny("[]", preTokenizer: """{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}""",
            decoder: """{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}""");
        int[] ids = tok.Encode("ab c");
        Assert.Equal(["▁", "a", "b", "▁", "c"], ids.Select(tok.IdToToken).ToArray());
        Assert.Equal("ab c", tok.Decode(ids));
    }

    [Fact]
    public void ReplaceAndLowercaseNormalizers()
    {
        var tok = Tiny("[]", normalizer: """{"type":"Sequence","normalizers":[{"type":"Lowercase"},{"type":"Replace","pattern":{"Regex":"x+"},"content":"y"}]}""");
        Assert.Equal([0, 24, 1], tok.Encode("AXXb"));
    }

    [Fact]
    public void ByteFallbackDecoderTurnsInvalidBytesIntoReplacementCharacters()
    {
        var chain = new ByteFallbackDecoder().DecodeChain(["<0xE6>", "<0x97>", "<0xA5>", "x", "<0xE6>", "<0x97>"]);
        Assert.Equal(["日", "x", "\uFFFD", "\uFFFD"], chain);
    }

    [Fact]
    public void ByteLevelAlphabetIsABijection()
    {
        var seen = new HashSet<char>();
        for (int b = 0; b < 256; b++)
        {
            char c = ByteLevelAlphabet.ByteToChar[b];
            Assert.True(seen.Add(c));
            Assert.Equal(b, ByteLevelAlphabet.ByteOf(c));
        }
        Assert.Equal('Ġ', ByteLevelAlphabet.ByteToChar[' ']);
        Assert.Equal('Ċ', ByteLevelAlphabet.ByteToChar['\n']);
        Assert.Equal(-1, ByteLevelAlphabet.ByteOf('▁'));
    }

    [Fact]
    public void TokenizerConfigParsesTokenObjectsAndTemplateLists()
    {
        string json = """
            {"bos_token":{"__type":"AddedToken","content":"<s>","lstrip":false},"eos_token":"</s>","pad_token":null,
             "add_bos_token":true,"add_eos_token":false,"model_max_length":4096,
             "chat_template":[{"name":"tool_use","template":"T"},{"name":"default","template":"D"}]}
            """;
        using var doc = JsonDocument.Parse(json);
        var c = TokenizerConfig.Parse(doc.RootElement, "tokenizer_config.json");
        Assert.Equal(("<s>", "</s>", (string?)null), (c.BosToken, c.EosToken, c.PadToken));
        Assert.Equal((true, false, 4096L), (c.AddBosToken!.Value, c.AddEosToken!.Value, c.ModelMaxLength!.Value));
        Assert.Equal("D", c.ChatTemplate);

        using var bad = JsonDocument.Parse("""{"eos_token": 7}""");
        var e = Assert.Throws<PeftException>(() => TokenizerConfig.Parse(bad.RootElement, "cfg.json"));
        Assert.Contains("cfg.json", e.Message);
        Assert.Contains("eos_token", e.Message);
    }
}

public class NormalizedAddedTokenTests
{
    [Fact]
    public void NormalizedAddedTokenIsMatchedByItsNormalizedContent()
    {
        // Lowercase normalizer + normalized added token "AB": the text "xaby" normalizes to "xaby", where "ab" is found.
        var vocab = string.Join(",", "abxy".Select((c, i) => $"\"{c}\":{i}"));
        string json = $$$"""
            {"added_tokens":[{"id":50,"content":"AB","single_word":false,"lstrip":false,"rstrip":false,"normalized":true,"special":false}],
             "normalizer":{"type":"Lowercase"},"pre_tokenizer":null,"post_processor":null,"decoder":null,
             "model":{"type":"BPE","vocab":{{{{vocab}}}},"merges":[]}}
            """;
        var tok = HfTokenizer.FromJson(System.Text.Encoding.UTF8.GetBytes(json), "t.json");
        Assert.Equal([2, 50, 3], tok.Encode("xABy"));
        Assert.Equal([2, 50, 3], tok.Encode("xaby"));
    }
}

public class PostProcessorAndByteLevelTests
{
    [Fact]
    public void SequenceOfByteLevelAndTemplateAddsBos()
    {
        // The post-processor of later Llama 3 releases: ByteLevel (offsets only) then TemplateProcessing with BOS.
        string json = """
            {"type":"Sequence","processors":[
              {"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},
              {"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
               "pair":[],"special_tokens":{"<|begin_of_text|>":{"id":"<|begin_of_text|>","ids":[128000],"tokens":["<|begin_of_text|>"]}}}]}
            """;
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var post = PostProcessor.FromJson(doc.RootElement, "t.json")!;
        Assert.Equal([128000, 5, 6], post.Process([5, 6], addSpecial: true));
        Assert.Equal([5, 6], post.Process([5, 6], addSpecial: false));
    }

    [Fact]
    public void ByteLevelPreTokenizerWithPrefixSpaceAndGpt2Regex()
    {
        using var doc = System.Text.Json.JsonDocument.Parse("""{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}""");
        var pre = PreTokenizer.FromJson(doc.RootElement, "t.json")!;
        var output = new List<Piece>();
        string text = "hello world's 12\n";
        pre.Split(new Piece(text, 0, text.Length), output, isLast: false, firstSection: true); // not last: mapped here
        Assert.Equal(["Ġhello", "Ġworld", "'s", "Ġ12", "Ċ"], output.Select(p => p.Span.ToString()));
    }
}
