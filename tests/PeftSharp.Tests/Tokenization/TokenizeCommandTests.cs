using System.Text.Json;
using PeftSharp.Cli.Commands;

namespace PeftSharp.Tests.Tokenization;

/// <summary>`peft tokenize` helpers: output shape, JSONL line handling, --decode parsing.</summary>
public class TokenizeCommandTests
{
    [Fact]
    public void ResultHasIdsAndVocabularyStrings()
    {
        var tok = TokenizerFiles.Load("llama3");
        using var doc = JsonDocument.Parse(TokenizeCommand.Result(tok, "Hello world", addSpecial: true));
        Assert.Equal([9906, 1917], doc.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(["Hello", "Ġworld"], doc.RootElement.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()));
    }

    [Theory]
    [InlineData("""{"text": "hi there", "label": 1}""", "hi there")]
    [InlineData("plain line", "plain line")]
    [InlineData("""{"prompt": "no text field"}""", """{"prompt": "no text field"}""")]
    [InlineData("{not json", "{not json")]
    public void FileLinesUseTheTextFieldOfJsonObjects(string line, string expected) =>
        Assert.Equal(expected, TokenizeCommand.TextOfLine(line));

    [Fact]
    public void DecodeIdsParse()
    {
        Assert.Equal([1, 2, 3], TokenizeCommand.ParseIds("1,2, 3"));
        var e = Assert.Throws<PeftException>(() => TokenizeCommand.ParseIds("1,x"));
        Assert.Contains("\"x\"", e.Message);
    }
}
