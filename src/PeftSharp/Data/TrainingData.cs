using PeftSharp.Templates;
using PeftSharp.Tokenization;

namespace PeftSharp.Data;

internal sealed class DataOptions
{
    public DatasetFormat Format { get; init; } = DatasetFormat.Auto;
    /// <summary>Skip bad records (malformed JSON, wrong fields, a conversation the template rejects) and count them.</summary>
    public bool SkipBadLines { get; init; }
    /// <summary>Train on all tokens, not only completions / assistant turns.</summary>
    public bool TrainOnPrompt { get; init; }
    /// <summary>Fraction of the training file held out for evaluation (ignored when <see cref="EvalFile"/> is set).</summary>
    public double EvalFraction { get; init; }
    /// <summary>A separate evaluation file (same formats).</summary>
    public string? EvalFile { get; init; }
    /// <summary>Seed of the eval split.</summary>
    public int Seed { get; init; }
    public IReadOnlyList<string>? EndOfTurnTokens { get; init; }
    public IReadOnlyDictionary<string, object?>? TemplateVariables { get; init; }
}

/// <summary>Tokenized train and eval examples, with what was skipped.</summary>
internal sealed class PreparedData
{
    public required IReadOnlyList<EncodedExample> Train { get; init; }
    public required IReadOnlyList<EncodedExample> Eval { get; init; }
    public required DatasetFormat Format { get; init; }
    /// <summary>Bad records skipped (train and eval files together); 0 unless SkipBadLines.</summary>
    public int SkippedCount { get; init; }
    public IReadOnlyList<string> SkippedReasons { get; init; } = [];
}

/// <summary>The data pipeline in one call: load → validate → tokenize with labels → eval split.</summary>
internal static class TrainingData
{
    public static PreparedData Prepare(string trainFile, ITokenizer tokenizer, ChatTemplate? chatTemplate, DataOptions? options = null)
    {
        options ??= new DataOptions();
        var encoder = new ExampleEncoder(tokenizer, chatTemplate, new EncodeOptions
        {
            TrainOnPrompt = options.TrainOnPrompt,
            EndOfTurnTokens = options.EndOfTurnTokens,
            TemplateVariables = options.TemplateVariables,
        });
        var reasons = new List<string>();
        int skipped = 0;

        List<EncodedExample> LoadAndEncode(string file, out DatasetFormat format)
        {
            var loaded = DatasetLoader.Load(file, new DatasetLoadOptions { Format = options.Format, SkipBadLines = options.SkipBadLines });
            format = loaded.Format;
            skipped += loaded.SkippedCount;
            reasons.AddRange(loaded.SkippedReasons);
            var encoded = new List<EncodedExample>(loaded.Examples.Count);
            foreach (var ex in loaded.Examples)
            {
                try { encoded.Add(encoder.Encode(ex)); }
                catch (PeftException e) when (options.SkipBadLines)
                {
                    skipped++;
                    if (reasons.Count < DatasetLoader.MaxReasonsKept) reasons.Add(e.Message);
                }
            }
            if (encoded.Count == 0) throw new PeftException($"{file}: no training examples left after skipping bad records (first: {reasons.FirstOrDefault()})");
            return encoded;
        }

        var train = LoadAndEncode(trainFile, out var fmt);
        List<EncodedExample> eval;
        if (options.EvalFile != null) eval = LoadAndEncode(options.EvalFile, out _);
        else (train, eval) = EvalSplit.Split(train, options.EvalFraction, options.Seed);
        return new PreparedData { Train = train, Eval = eval, Format = fmt, SkippedCount = skipped, SkippedReasons = reasons };
    }
}
