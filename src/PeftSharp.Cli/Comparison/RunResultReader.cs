using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftSharp.Cli.Comparison;

/// <summary>
/// Reads what `peft train` left in a method's output folder: summary.json (TrainingResult), metrics.jsonl (loss
/// curve) and evaluation.json (task metric), plus the size of the saved adapter or model.
/// </summary>
internal static class RunResultReader
{
    public const string SummaryFile = "summary.json";
    public const string MetricsFile = "metrics.jsonl";
    public const string EvaluationFile = "evaluation.json";

    public static bool IsFinished(string methodDir) => File.Exists(Path.Combine(methodDir, SummaryFile));

    public static MethodResult Read(string method, string methodDir, MethodStatus status, double learningRate)
    {
        string summaryPath = Path.Combine(methodDir, SummaryFile);
        JsonNode summary;
        try { summary = JsonNode.Parse(File.ReadAllText(summaryPath)) ?? throw new PeftException($"{summaryPath}: empty"); }
        catch (JsonException e) { throw new PeftException($"{summaryPath}: not valid JSON ({e.Message}); delete the folder or rerun with --force"); }
        var memory = Key(summary, "Memory");
        var finalEval = Key(summary, "FinalEval");
        var firstEval = Key(summary, "FirstEval");
        var (train, eval) = ReadCurves(Path.Combine(methodDir, MetricsFile));
        var (emBefore, emAfter) = ReadExactMatch(Path.Combine(methodDir, EvaluationFile));
        string? saved = Str(Key(summary, "AdapterDir"));
        // The adapter path is written as the child saw it; resolve it beside the summary when it was relative to
        // another working directory.
        if (saved != null && !Directory.Exists(saved)) saved = Path.Combine(methodDir, Path.GetFileName(saved.TrimEnd('/', '\\')));
        return new MethodResult
        {
            Method = method,
            Status = status,
            LearningRate = learningRate,
            LogFile = File.Exists(Path.Combine(methodDir, "train.log")) ? Path.Combine(methodDir, "train.log") : null,
            Steps = Int(Key(summary, "Steps")),
            TrainableParameters = Long(Key(summary, "TrainableParameters")),
            TotalParameters = Long(Key(summary, "TotalParameters")),
            FrozenWeightBytes = Long(Key(memory, "FrozenWeightBytes")),
            TrainableBytes = Long(Key(memory, "TrainableBytes")),
            OptimizerBytes = Long(Key(memory, "OptimizerBytes")),
            PeakRssMib = Num(Key(memory, "PeakRssMb")),
            TokensPerSecond = Num(Key(summary, "MeanTokensPerSecond")),
            WallSeconds = Num(Key(summary, "WallSeconds")),
            FinalTrainLoss = Num(Key(summary, "FinalLoss")),
            EvalLossBefore = Num(Key(firstEval, "Loss")),
            EvalLoss = Num(Key(finalEval, "Loss")),
            EvalPerplexity = Num(Key(finalEval, "Perplexity")),
            ExactMatchBefore = emBefore,
            ExactMatch = emAfter,
            SavedDir = saved,
            SavedBytes = saved != null && Directory.Exists(saved) ? FolderBytes(saved) : null,
            TrainLoss = train,
            EvalLossCurve = eval,
        };
    }

    /// <summary>Train-loss and eval-loss points from metrics.jsonl; unreadable lines are skipped (a killed run may
    /// leave a half-written last line).</summary>
    public static (List<CurvePoint> Train, List<CurvePoint> Eval) ReadCurves(string path)
    {
        var train = new List<CurvePoint>();
        var eval = new List<CurvePoint>();
        if (!File.Exists(path)) return (train, eval);
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonNode? n;
            try { n = JsonNode.Parse(line); }
            catch (JsonException) { continue; }
            if (Int(n?["step"]) is not int step) continue;
            if (Num(n!["loss"]) is double loss) train.Add(new CurvePoint(step, loss));
            if (Num(n["eval_loss"]) is double el) eval.Add(new CurvePoint(step, el));
        }
        return (train, eval);
    }

    static (double?, double?) ReadExactMatch(string path)
    {
        if (!File.Exists(path)) return (null, null);
        try
        {
            var n = JsonNode.Parse(File.ReadAllText(path));
            return (Num(n?["exact_match_before"]), Num(n?["exact_match_after"]));
        }
        catch (JsonException) { return (null, null); }
    }

    public static long FolderBytes(string dir) =>
        new DirectoryInfo(dir).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);

    /// <summary>A summary.json field by its PascalCase name, or by its snake_case spelling (the trainer's JSON files
    /// move to snake_case keys; folders written before and after read alike).</summary>
    static JsonNode? Key(JsonNode? obj, string pascal)
    {
        if (obj is not JsonObject o) return null;
        if (o.TryGetPropertyValue(pascal, out var v)) return v;
        var snake = new System.Text.StringBuilder();
        for (int i = 0; i < pascal.Length; i++)
        {
            if (char.IsUpper(pascal[i]) && i > 0) snake.Append('_');
            snake.Append(char.ToLowerInvariant(pascal[i]));
        }
        return o.TryGetPropertyValue(snake.ToString(), out v) ? v : null;
    }

    static double? Num(JsonNode? n)
    {
        if (n is not JsonValue v) return null;
        if (v.TryGetValue<double>(out var d)) return double.IsFinite(d) ? d : null;
        if (v.TryGetValue<string>(out var s) && double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out d))
            return double.IsFinite(d) ? d : null;
        return null;
    }

    static long? Long(JsonNode? n) => n is JsonValue v && v.TryGetValue<long>(out var l) ? l : Num(n) is double d ? (long)d : null;
    static int? Int(JsonNode? n) => Long(n) is long l ? (int)l : null;
    static string? Str(JsonNode? n) => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
