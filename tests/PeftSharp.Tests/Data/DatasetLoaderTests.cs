using PeftSharp.Data;

namespace PeftSharp.Tests.Data;

public class DatasetLoaderTests
{
    [Theory]
    [InlineData("{\"text\": \"hello\"}", DatasetFormat.Text)]
    [InlineData("{\"prompt\": \"Q\", \"completion\": \"A\"}", DatasetFormat.PromptCompletion)]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}", DatasetFormat.Messages)]
    [InlineData("{\"instruction\": \"Add\", \"input\": \"1 2\", \"output\": \"3\"}", DatasetFormat.Alpaca)]
    [InlineData("{\"instruction\": \"Say hi\", \"output\": \"hi\", \"id\": 7}", DatasetFormat.Alpaca)]
    public void DetectsEachFormat(string line, DatasetFormat expected)
    {
        using var files = new DataTestFiles();
        var ds = DatasetLoader.Load(files.WriteLines("d.jsonl", line, line));
        Assert.Equal(expected, ds.Format);
        Assert.Equal(2, ds.Examples.Count);
        Assert.All(ds.Examples, e => Assert.Equal(expected, e.Format));
        Assert.Equal([1, 2], ds.Examples.Select(e => e.Line));
    }

    [Fact]
    public void ReadsFieldsOfEachFormat()
    {
        using var files = new DataTestFiles();
        var pc = DatasetLoader.Load(files.WriteLines("pc.jsonl", "{\"prompt\": \"Q: 1+1\", \"completion\": \" 2\"}")).Examples[0];
        Assert.Equal(("Q: 1+1", " 2"), (pc.Prompt, pc.Completion));
        var al = DatasetLoader.Load(files.WriteLines("al.jsonl", "{\"instruction\": \"I\", \"input\": null, \"output\": \"O\"}")).Examples[0];
        Assert.Equal(("I", null, "O"), (al.Instruction, al.Input, al.Output));
        var ch = DatasetLoader.Load(files.WriteLines("ch.jsonl",
            "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": \"U\"}, {\"role\": \"assistant\", \"content\": \"A\", \"reasoning_content\": \"R\"}]}")).Examples[0];
        Assert.Equal(["system", "user", "assistant"], ch.Messages!.Select(m => m.Role));
        Assert.Equal("A", ch.Messages![2].Content);
        Assert.True(ch.Messages![2].Extra!.ContainsKey("reasoning_content"));
    }

    [Fact]
    public void ExplicitFormatRejectsOtherShapes()
    {
        using var files = new DataTestFiles();
        string p = files.WriteLines("d.jsonl", "{\"text\": \"hello\"}");
        var ex = Assert.Throws<PeftException>(() => DatasetLoader.Load(p, new DatasetLoadOptions { Format = DatasetFormat.PromptCompletion }));
        Assert.StartsWith(p + ":1: expected {\"prompt\": string, \"completion\": string}", ex.Message);
    }

    [Fact]
    public void JsonArrayAndDataObjectWithElementLines()
    {
        using var files = new DataTestFiles();
        var arr = DatasetLoader.Load(files.Write("a.json", "[\n  {\"text\": \"a\"},\n  {\"text\": \"b\"}\n]\n"));
        Assert.Equal([2, 3], arr.Examples.Select(e => e.Line));
        Assert.Equal(["a", "b"], arr.Examples.Select(e => e.Text));

        var data = DatasetLoader.Load(files.Write("d.json", "{\"version\": 1,\n \"data\": [\n {\"prompt\": \"p\", \"completion\": \"c\"}]}"));
        Assert.Equal(DatasetFormat.PromptCompletion, data.Format);
        Assert.Equal(3, data.Examples[0].Line);

        string bad = files.Write("bad.json", "[\n {\"text\": \"a\"},\n {\"text\": 5}\n]");
        var ex = Assert.Throws<PeftException>(() => DatasetLoader.Load(bad));
        Assert.Equal(bad + ":3: \"text\" must be a string, found a number", ex.Message);

        // JSONL content saved under .json is read line by line.
        var jl = DatasetLoader.Load(files.Write("jl.json", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n"));
        Assert.Equal(2, jl.Examples.Count);
    }

    public static IEnumerable<object[]> BadLines() =>
    [
        ["{\"text\": \"ok\"", "invalid JSON"],
        ["[1, 2]", "expected a JSON object"],
        ["{\"text\": 3}", "\"text\" must be a string, found a number"],
        ["{\"text\": \"\"}", "\"text\" is empty"],
        ["{\"foo\": \"bar\"}", "expected {\"text\": string} (format text, detected at line 1), found keys \"foo\""],
    ];

    [Theory]
    [MemberData(nameof(BadLines))]
    public void BadLineErrorNamesFileLineAndProblem(string badLine, string expectedText)
    {
        using var files = new DataTestFiles();
        string p = files.WriteLines("d.jsonl", "{\"text\": \"first\"}", "", badLine, "{\"text\": \"last\"}");
        var ex = Assert.Throws<PeftException>(() => DatasetLoader.Load(p));
        Assert.StartsWith(p + ":3: ", ex.Message);
        Assert.Contains(expectedText, ex.Message);
    }

    [Theory]
    [InlineData("{\"messages\": []}", "\"messages\" is empty")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", "no \"assistant\" message")]
    [InlineData("{\"messages\": [{\"role\": \"user\"}, {\"role\": \"assistant\", \"content\": \"x\"}]}", "messages[0] needs \"content\" as a string")]
    [InlineData("{\"messages\": [{\"content\": \"x\"}]}", "messages[0] needs \"role\"")]
    [InlineData("{\"messages\": \"hi\"}", "\"messages\" must be an array")]
    [InlineData("{\"prompt\": \"p\", \"completion\": 1}", "\"completion\" must be a string")]
    [InlineData("{\"instruction\": \"i\", \"output\": \"\"}", "\"output\" is empty")]
    [InlineData("{\"x\": 1}", "unknown record format (keys \"x\")")]
    public void FirstRecordErrors(string line, string expectedText)
    {
        using var files = new DataTestFiles();
        string p = files.WriteLines("d.jsonl", line);
        var ex = Assert.Throws<PeftException>(() => DatasetLoader.Load(p));
        Assert.StartsWith(p + ":1: ", ex.Message);
        Assert.Contains(expectedText, ex.Message);
    }

    [Fact]
    public void SkipBadLinesCountsThem()
    {
        using var files = new DataTestFiles();
        string p = files.WriteLines("d.jsonl", "{\"text\": \"a\"}", "not json", "{\"text\": 1}", "{\"text\": \"b\"}", "{\"prompt\": \"x\", \"completion\": \"y\"}");
        var ds = DatasetLoader.Load(p, new DatasetLoadOptions { SkipBadLines = true });
        Assert.Equal(["a", "b"], ds.Examples.Select(e => e.Text));
        Assert.Equal(3, ds.SkippedCount);
        Assert.Equal([p + ":2:", p + ":3:", p + ":5:"], ds.SkippedReasons.Select(r => r[..(r.IndexOf(": ", StringComparison.Ordinal) + 1)]));
    }

    [Fact]
    public void AllBadOrEmptyFileIsAnError()
    {
        using var files = new DataTestFiles();
        string p = files.WriteLines("d.jsonl", "oops", "{\"text\": 2}");
        var ex = Assert.Throws<PeftException>(() => DatasetLoader.Load(p, new DatasetLoadOptions { SkipBadLines = true }));
        Assert.Contains("no training examples: all 2 records were bad", ex.Message);
        Assert.Throws<PeftException>(() => DatasetLoader.Load(files.Write("e.jsonl", "\n\n")));
        Assert.Contains("not found", Assert.Throws<PeftException>(() => DatasetLoader.Load(Path.Combine(files.Dir, "missing.jsonl"))).Message);
    }

    [Fact]
    public void FormatNamesParse()
    {
        Assert.Equal(DatasetFormat.Messages, DatasetFormats.Parse("chat"));
        Assert.Equal(DatasetFormat.PromptCompletion, DatasetFormats.Parse("prompt-completion"));
        Assert.Contains("unknown data set format 'csv'", Assert.Throws<PeftException>(() => DatasetFormats.Parse("csv")).Message);
    }
}

public class DatasetLoaderFormatFixingTests
{
    [Fact]
    public void FormatIsFixedByTheFirstValidRecordOnly()
    {
        using var files = new DataTestFiles();
        // Line 1 looks like text but is invalid; with skipping, line 2 decides the format.
        string p = files.WriteLines("d.jsonl", "{\"text\": 1}", "{\"prompt\": \"p\", \"completion\": \"c\"}", "{\"text\": \"t\"}");
        var ds = DatasetLoader.Load(p, new DatasetLoadOptions { SkipBadLines = true });
        Assert.Equal(DatasetFormat.PromptCompletion, ds.Format);
        Assert.Equal(2, ds.SkippedCount);
        Assert.Contains("(format prompt_completion, detected at line 2)", ds.SkippedReasons[1]);
    }
}

public class DatasetLoaderEncodingTests
{
    [Fact]
    public void CrLfLineEndingsAndUtf8BomAreRead()
    {
        using var files = new DataTestFiles();
        string p = Path.Combine(files.Dir, "crlf.jsonl");
        File.WriteAllBytes(p, [0xEF, 0xBB, 0xBF, .. System.Text.Encoding.UTF8.GetBytes("{\"text\": \"a\"}\r\n\r\n{\"text\": \"é\"}\r\n")]);
        var ds = DatasetLoader.Load(p);
        Assert.Equal(["a", "é"], ds.Examples.Select(e => e.Text));
        Assert.Equal([1, 3], ds.Examples.Select(e => e.Line));
    }
}
