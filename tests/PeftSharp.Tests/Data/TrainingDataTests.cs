using PeftSharp.Data;
using PeftSharp.Templates;
using PeftSharp.Tests.Templates;

namespace PeftSharp.Tests.Data;

public class TrainingDataTests
{
    private static readonly ByteTestTokenizer Tok = new("<s>", "</s>");

    private static ChatTemplate Llama2() =>
        new(File.ReadAllText(Path.Combine(TemplateFixtures.Templates, "llama2-chat.jinja")), "<s>", "</s>");

    private const string Good = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]}";
    private const string TwoUsers = "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}, {\"role\": \"assistant\", \"content\": \"c\"}]}";

    [Fact]
    public void TemplateRejectionIsABadLineWithFileAndLine()
    {
        using var files = new DataTestFiles();
        string p = files.WriteLines("chat.jsonl", Good, TwoUsers, Good);
        var ex = Assert.Throws<PeftException>(() => TrainingData.Prepare(p, Tok, Llama2()));
        Assert.Equal(p + ":2: the chat template rejected this conversation: Conversation roles must alternate user/assistant/user/assistant/...", ex.Message);

        var data = TrainingData.Prepare(p, Tok, Llama2(), new DataOptions { SkipBadLines = true });
        Assert.Equal(2, data.Train.Count);
        Assert.Equal(1, data.SkippedCount);
        Assert.StartsWith(p + ":2: ", data.SkippedReasons[0]);
        Assert.Equal(DatasetFormat.Messages, data.Format);
    }

    [Fact]
    public void SkipCountsBothMalformedAndRejectedRecords()
    {
        using var files = new DataTestFiles();
        string p = files.WriteLines("chat.jsonl", Good, "{bad json", TwoUsers, "{\"messages\": []}", Good);
        var data = TrainingData.Prepare(p, Tok, Llama2(), new DataOptions { SkipBadLines = true });
        Assert.Equal(2, data.Train.Count);
        Assert.Equal(3, data.SkippedCount);
        Assert.Equal([1, 5], data.Train.Select(e => e.Line));
    }

    [Fact]
    public void EvalByFractionOrFile()
    {
        using var files = new DataTestFiles();
        string train = files.WriteLines("train.jsonl", Enumerable.Range(0, 20).Select(i => $"{{\"prompt\": \"p{i}\", \"completion\": \"c{i}\"}}").ToArray());
        var split = TrainingData.Prepare(train, Tok, null, new DataOptions { EvalFraction = 0.25, Seed = 9 });
        Assert.Equal((15, 5), (split.Train.Count, split.Eval.Count));
        Assert.Empty(split.Train.Select(e => e.Line).Intersect(split.Eval.Select(e => e.Line)));

        string eval = files.WriteLines("eval.jsonl", "{\"prompt\": \"x\", \"completion\": \"y\"}");
        var byFile = TrainingData.Prepare(train, Tok, null, new DataOptions { EvalFile = eval, EvalFraction = 0.5 });
        Assert.Equal((20, 1), (byFile.Train.Count, byFile.Eval.Count));
        Assert.Equal(eval, byFile.Eval[0].File);
    }

    [Fact]
    public void EndToEndBatchesFromAChatFile()
    {
        using var files = new DataTestFiles();
        string p = files.WriteLines("chat.jsonl", Good, Good, Good);
        var data = TrainingData.Prepare(p, Tok, Llama2());
        var loader = new DataLoader(data.Train, new BatchOptions { BatchSize = 1, MaxLength = 128, PadId = Tok.EosId!.Value }, seed: 0);
        var b = loader.Next();
        Assert.Equal(3, b.ExampleCount);
        // "<s>[INST] Hi [/INST] Hello </s>": trained targets are " Hello </s>" (8 tokens) per example.
        Assert.Equal(3 * 8, b.TrainedTokens);
        Assert.Equal(0, b.Positions[data.Train[0].Length]);
    }
}
