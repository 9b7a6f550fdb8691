namespace PeftSharp.Cli.Comparison;

/// <summary>The measurements as one table of text cells (a row per method), shared by the terminal, Markdown and HTML
/// renderings so they always show the same figures. With several seeds a cell reads "mean ± sample standard deviation".</summary>
internal static class ResultTable
{
    public static readonly string[] Headers =
    [
        "method", "status", "learning rate", "trainable params", "trainable %", "frozen weights", "peak RSS", "tokens/s",
        "wall time", "final train loss", "eval loss", "eval ppl", "exact match", "saved size",
    ];

    /// <summary>Columns holding numbers (right-aligned).</summary>
    public static bool IsNumeric(int column) => column >= 2;

    public static List<string[]> Rows(ComparisonReport report) => report.Results.Select(Row).ToList();

    public static string[] Row(MethodResult r) =>
    [
        r.Method,
        r.Status switch { MethodStatus.Trained => "trained", MethodStatus.Reused => "reused", _ => "FAILED" },
        Fmt.Sci(r.LearningRate),
        Fmt.Count(r.TrainableParameters),
        r.TrainablePercent is double p ? p.ToString(p >= 1 ? "F1" : "F3", System.Globalization.CultureInfo.InvariantCulture) + " %" : "—",
        Fmt.Bytes(r.FrozenWeightBytes),
        Fmt.Mib(r.PeakRssMib, r.Spread?.PeakRssMib),
        Fmt.Num(r.TokensPerSecond, r.Spread?.TokensPerSecond, 0),
        Fmt.Seconds(r.WallSeconds, r.Spread?.WallSeconds),
        Fmt.Num(r.FinalTrainLoss, r.Spread?.FinalTrainLoss, 4),
        Fmt.Num(r.EvalLoss, r.Spread?.EvalLoss, 4),
        Fmt.Num(r.EvalPerplexity, r.Spread?.EvalPerplexity, 2),
        r.ExactMatch is double em ? (r.ExactMatchBefore is double b ? $"{Fmt.Pct(b)} → " : "") + Fmt.Pct(em, r.Spread?.ExactMatch) : "—",
        Fmt.Bytes(r.SavedBytes),
    ];

    /// <summary>Aligned plain text (for redirected output and logs).</summary>
    public static string PlainText(ComparisonReport report)
    {
        var rows = Rows(report);
        var widths = Headers.Select((h, c) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[c].Length))).ToArray();
        var sb = new System.Text.StringBuilder();
        string Line(string[] cells) => string.Join("  ", cells.Select((x, c) => IsNumeric(c) ? x.PadLeft(widths[c]) : x.PadRight(widths[c]))).TrimEnd();
        sb.AppendLine(Line(Headers));
        sb.AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
        foreach (var r in rows) sb.AppendLine(Line(r));
        foreach (var f in report.Results.Where(r => !r.Succeeded)) sb.AppendLine($"{f.Method} failed: {f.Error}");
        return sb.ToString();
    }
}
