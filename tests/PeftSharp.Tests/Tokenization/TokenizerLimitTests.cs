using System.Text;
using System.Text.Json;
using PeftSharp.Tokenization;

namespace PeftSharp.Tests.Tokenization;

/// <summary>Issue #13's tokenizer findings: hostile patterns, ids and vocabularies give a PeftException naming the
/// file, not a hang, a stack trace or silently dropped text.</summary>
public class TokenizerLimitTests
{
    const string File = "/models/x/tokenizer.json";

    static HfTokenizer Build(string preTokenizer = "null", string vocab = """{"a":0,"b":1,"ab":2}""", string added = "[]") =>
        HfTokenizer.FromJson(Encoding.UTF8.GetBytes(
            $$$"""{"added_tokens":{{{added}}},"normalizer":null,"pre_tokenizer":{{{preTokenizer}}},"post_processor":null,"decoder":null,"model":{"type":"BPE","vocab":{{{vocab}}},"merges":[]}}"""), File);

    [Fact]
    public void NestedQuantifierSplitRegexRunsInLinearTime()
    {
        // (a+)+$ on 56 a's and a b backtracks 2^56 times in a backtracking engine; the linear engine answers at once.
        var pre = PreTokenizer.FromJson(JsonDocument.Parse("""{"type":"Split","pattern":{"Regex":"(a+)+$"},"behavior":"Isolated","invert":false}""").RootElement, File)!;
        string text = new string('a', 56) + "b";
        var output = new List<Piece>();
        pre.Split(new Piece(text, 0, text.Length), output, isLast: true, firstSection: true);
        Assert.Equal([text], output.Select(p => p.Span.ToString()));   // no match: the piece stays whole
        string matching = new string('a', 56);
        output.Clear();
        pre.Split(new Piece(matching, 0, matching.Length), output, isLast: true, firstSection: true);
        Assert.Equal([matching], output.Select(p => p.Span.ToString()));
    }

    [Fact]
    public void LinearEngineGivesTheBacktrackingEnginesMatches()
    {
        // Ordered alternation picks the first branch that matches, not the longest, in both engines.
        var regex = RegexFactory.Create("a|ab|abc", File);
        Assert.True(regex.Options.HasFlag(System.Text.RegularExpressions.RegexOptions.NonBacktracking));
        Assert.Equal(["a", "a"], regex.Matches("abcabc").Select(m => m.Value));
    }

    [Fact]
    public void PatternWithLookaheadFallsBackToTheBacktrackingEngineWithATimeout()
    {
        var regex = RegexFactory.Create(@"\s+(?!\S)|\s+", File);
        Assert.False(regex.Options.HasFlag(System.Text.RegularExpressions.RegexOptions.NonBacktracking));
        Assert.Equal(RegexFactory.BacktrackingTimeout, regex.MatchTimeout);
    }

    [Fact]
    public void InvalidRegexNamesTheFileAndPattern()
    {
        var e = Assert.Throws<PeftException>(() => RegexFactory.Create("(a", File));
        Assert.Contains(File, e.Message);
        Assert.Contains("'(a'", e.Message);
    }

    [Theory]
    [InlineData("""{"a":2147483647}""", "2147483647")]
    [InlineData("""{"a":-1}""", "-1")]
    [InlineData("""{"a":1.5}""", "whole number")]
    [InlineData("""{"a":"0"}""", "whole number")]
    [InlineData("""{"a":99999999999}""", "99999999999")]
    public void VocabularyIdsOutOfRangeAreRefused(string vocab, string fragment)
    {
        var e = Assert.Throws<PeftException>(() => Build(vocab: vocab));
        Assert.Contains(File, e.Message);
        Assert.Contains("model.vocab", e.Message);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void AddedTokenIdOutOfRangeIsRefused()
    {
        var e = Assert.Throws<PeftException>(() => Build(added: """[{"id":2147483647,"content":"<x>","special":true}]"""));
        Assert.Contains("added_tokens[0]", e.Message);
    }

    [Fact]
    public void ByteLevelVocabularyMissingAByteIsAnErrorNotADroppedCharacter()
    {
        // Every byte stand-in except the one for 'z'.
        var chars = ByteLevelAlphabet.ByteToChar.Where(c => c != ByteLevelAlphabet.ByteToChar['z']);
        string vocab = "{" + string.Join(",", chars.Select((c, i) => $"{JsonSerializer.Serialize(c.ToString())}:{i}")) + "}";
        var tok = Build(preTokenizer: """{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}""", vocab: vocab);
        Assert.Equal(3, tok.Encode("abc", addSpecial: false).Length);
        var e = Assert.Throws<PeftException>(() => tok.Encode("jazz", addSpecial: false));
        Assert.Contains(File, e.Message);
        Assert.Contains("byte 0x7A", e.Message);
    }
}
