using System.Text;
using static PeftSharp.Cli.Comparison.SvgCharts;

namespace PeftSharp.Cli.Comparison;

/// <summary>
/// report.html: one self-contained page (inline CSS and SVG, no scripts, no external assets) with the train-loss and
/// eval-loss curves of all methods (log scale), exact-match, peak-RSS, tokens/s and frozen-weight bars (± the spread over
/// seeds), the table, what the seeds say about noise, and the seed claims part by part. Every text is escaped.
/// </summary>
internal static class HtmlReport
{
    public const string LossChartId = "loss-curves";
    public const string MemoryChartId = "peak-rss";
    public const string SpeedChartId = "tokens-per-second";
    public const string FrozenChartId = "frozen-weights";
    public const string EvalLossChartId = "eval-loss";
    public const string TaskChartId = "exact-match";
    public const string LossChartTitle = "Training loss per step (log scale)";
    public const string EvalLossChartTitle = "Eval loss during training (log scale)";
    public const string TaskChartTitle = "Task metric: exact match after training";
    public const string MemoryChartTitle = "Peak memory (RSS) per method";
    public const string SpeedChartTitle = "Training throughput per method";
    public const string FrozenChartTitle = "Frozen base-weight memory per method";

    const string Css = """
        body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
        h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
        table { border-collapse: collapse; font-size: .9em; margin: 1em 0; } #results { font-size: .8em; }
        th, td { border: 1px solid #ccc; padding: .3em .6em; } th { background: #f3f3f3; text-align: left; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
        .scroll { overflow-x: auto; } tr.failed td { background: #fdecea; }
        .charts svg { display: block; margin: 1em 0; border: 1px solid #ddd; max-width: 100%; height: auto; }
        .verdict { font-weight: bold; padding: .1em .4em; border-radius: .3em; }
        .agrees { background: #e3f6e3; } .partly-agrees { background: #fff4d6; } .disagrees { background: #fde2e2; } .not-measured, .inconclusive { background: #eee; }
        .noise { background: #f6f8fa; border-left: 4px solid #8aa; padding: .5em .8em; }
        .note { color: #555; font-size: .9em; } code { background: #f5f5f5; padding: 0 .2em; }
        """;

    /// <summary>A number cell; "mean ± spread" breaks before the ± so the wide table keeps to the page.</summary>
    static string NumCell(string text)
    {
        int pm = text.IndexOf(" ± ", StringComparison.Ordinal);
        return pm < 0 ? Esc(text) : Esc(text[..pm]) + "<br>" + Esc(text[(pm + 1)..]);
    }

    public static string Render(ComparisonReport report)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        sb.Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        sb.Append("<title>PeftSharp method comparison</title><style>").Append(Css).Append("</style></head><body>\n");
        sb.Append("<h1>PeftSharp method comparison</h1>\n");
        sb.Append($"<p class=\"note\">Generated {Esc(report.CreatedUtc.ToString("yyyy-MM-dd HH:mm"))} UTC on {Esc(report.Machine)}.</p>\n");

        sb.Append("<h2>Setup</h2>\n<ul>");
        foreach (var (k, v) in MarkdownReport.SettingsLines(report)) sb.Append($"<li><b>{Esc(k)}</b>: {Esc(v)}</li>");
        sb.Append($"</ul>\n<p>Every method ran in its own process (so each peak RSS is that process's own) with the same model, data, steps, seed{(report.Settings.Seeds > 1 ? "s" : "")}, " +
                  "learning-rate schedule, rank and alpha.</p>\n");
        var diffs = report.DeliberateDifferences().ToList();
        if (diffs.Count > 0)
            sb.Append("<p>Deliberate differences:</p><ul>").Append(string.Concat(diffs.Select(d => $"<li>{Esc(d)}</li>"))).Append("</ul>\n");

        sb.Append("<h2>Charts</h2>\n<div class=\"charts\">\n");
        var results = report.Results;
        var series = results.Select((r, i) => new Series(r.Method + (r.Succeeded ? "" : " (failed)"), ColorFor(r.Method, i), r.TrainLoss, DashFor(r.Method),
            Band: r.TrainLossBand)).ToList();
        sb.Append(LineChart(LossChartId, LossChartTitle, "optimizer step", "train loss (log scale)", series, logY: true)).Append('\n');
        var evalSeries = results.Select((r, i) => new Series(r.Method + (r.Succeeded ? "" : " (failed)"), ColorFor(r.Method, i), r.EvalLossCurve, DashFor(r.Method),
            Markers: true)).ToList();
        sb.Append(LineChart(EvalLossChartId, EvalLossChartTitle, "optimizer step", "eval loss (log scale)", evalSeries, logY: true)).Append('\n');
        bool oneSeed = report.Settings.Seeds == 1;
        string whiskers = oneSeed ? "; whiskers: assumed one-run noise" : "; whiskers: ± 1 standard deviation over the seeds";
        // One seed: the whisker is the assumed one-run noise the verdicts use, so a single run still shows how far apart
        // two bars must be to count.
        double? Noise(MethodResult r, Figure f, double? measured, double scale = 1) =>
            measured * scale ?? (oneSeed && r.Succeeded ? RunNoise.Of(r, f) * scale : null);
        if (results.Any(r => r.ExactMatch != null))
            sb.Append(BarChart(TaskChartId, TaskChartTitle, "exact match on the eval completions (%)" + whiskers,
                results.Select((r, i) => new Bar(r.Method, ColorFor(r.Method, i), r.ExactMatch * 100,
                    !r.Succeeded ? "failed" : r.ExactMatch == null ? "—" : Fmt.Pct(r.ExactMatch, r.Spread?.ExactMatch) +
                        (r.ExactMatchBefore is double b ? $" (before {Fmt.Pct(b)})" : ""),
                    r.ExactMatch == null ? null : Noise(r, Figure.ExactMatch, r.Spread?.ExactMatch, 100), oneSeed)).ToList())).Append('\n');
        else
            sb.Append("<p class=\"note\">No task-metric chart: the data set defines no completions to match, or --task-eval is 0.</p>\n");
        sb.Append(BarChart(MemoryChartId, MemoryChartTitle, "peak resident set (MiB)" + whiskers,
            results.Select((r, i) => new Bar(r.Method, ColorFor(r.Method, i), r.PeakRssMib, r.Succeeded ? Fmt.Mib(r.PeakRssMib, r.Spread?.PeakRssMib) : "failed",
                Noise(r, Figure.PeakRss, r.Spread?.PeakRssMib), oneSeed)).ToList())).Append('\n');
        sb.Append(BarChart(SpeedChartId, SpeedChartTitle, "tokens per second (mean over steps)" + whiskers,
            results.Select((r, i) => new Bar(r.Method, ColorFor(r.Method, i), r.TokensPerSecond,
                r.Succeeded ? Fmt.Num(r.TokensPerSecond, r.Spread?.TokensPerSecond, 0) + " tok/s" : "failed",
                Noise(r, Figure.TokensPerSecond, r.Spread?.TokensPerSecond), oneSeed)).ToList())).Append('\n');
        sb.Append(BarChart(FrozenChartId, FrozenChartTitle, "frozen (not trained) base weights (MiB)",
            results.Select((r, i) => new Bar(r.Method, ColorFor(r.Method, i), r.FrozenWeightBytes / 1048576.0,
                r.Succeeded ? Fmt.Bytes(r.FrozenWeightBytes) : "failed")).ToList())).Append('\n');
        sb.Append("</div>\n");

        sb.Append("<h2>Results</h2>\n");
        sb.Append($"<p id=\"noise\" class=\"noise\">{Esc(SeedsNote.Text(report))}</p>\n");
        sb.Append("<div class=\"scroll\"><table id=\"results\"><thead><tr>");
        foreach (var h in ResultTable.Headers) sb.Append($"<th>{Esc(h)}</th>");
        sb.Append("</tr></thead><tbody>");
        foreach (var r in results)
        {
            var row = ResultTable.Row(r);
            sb.Append(r.Succeeded ? "<tr>" : "<tr class=\"failed\">");
            for (int c = 0; c < row.Length; c++) sb.Append(ResultTable.IsNumeric(c) ? $"<td class=\"num\">{NumCell(row[c])}</td>" : $"<td>{Esc(row[c])}</td>");
            sb.Append("</tr>");
        }
        sb.Append("</tbody></table></div>\n");
        sb.Append("<p class=\"note\">Trainable % is of all parameters including the adapter's. Frozen weights are the bytes of the base weights that are " +
                  "not trained (4-bit for the quantized methods). Peak RSS is the training process's VmHWM. Tokens/s is the mean over the training steps; wall time is the training loop's (model loading and the task metric excluded). " +
                  "Saved size is the adapter folder (the full model folder for full fine-tuning). Exact match (before → after) is greedy decoding on the " +
                  "eval completions, where the data set defines them.</p>\n");
        if (report.Settings.Seeds > 1)
        {
            sb.Append("<h3>Every run</h3>\n<table id=\"runs\"><thead><tr>").Append(string.Concat(SeedsNote.RunHeaders.Select(h => $"<th>{Esc(h)}</th>"))).Append("</tr></thead><tbody>");
            foreach (var row in SeedsNote.RunRows(report))
                sb.Append("<tr>").Append(string.Concat(row.Select((c, i) => i >= 3 ? $"<td class=\"num\">{Esc(c)}</td>" : $"<td>{Esc(c)}</td>"))).Append("</tr>");
            sb.Append("</tbody></table>\n");
        }
        var failed = results.Where(r => !r.Succeeded).ToList();
        if (failed.Count > 0)
        {
            sb.Append("<h3>Failed methods</h3><ul>");
            foreach (var f in failed) sb.Append($"<li><b>{Esc(f.Method)}</b>: <code>{Esc(f.Error ?? "")}</code> (log: {Esc(f.LogFile ?? "none")})</li>");
            sb.Append("</ul>\n");
        }

        sb.Append("<h2>Seed claims</h2>\n<p>The seed documents describe GPU runs of 7B–65B models; this is a small model on CPU, so only the direction " +
                  "of each effect is comparable, not its size.</p>\n");
        foreach (var c in report.Claims)
        {
            string cls = c.VerdictText.Replace(' ', '-');
            sb.Append($"<section class=\"claim\"><h3>{Esc(c.Title)}: <span class=\"verdict {cls}\">{Esc(c.VerdictText)}</span></h3><ul>" +
                      $"<li>Claim ({Esc(c.Source.Citation)}): {Esc(c.Quote)}</li>" +
                      $"<li>Our measure: {Esc(c.Definition)}</li>");
            foreach (var p in c.Parts)
                sb.Append(c.Parts.Count > 1
                    ? $"<li>Ours, <b>{Esc(p.Name)}</b> <span class=\"verdict {ClaimCheck.Text(p.Verdict).Replace(' ', '-')}\">{Esc(ClaimCheck.Text(p.Verdict))}</span> — {Esc(p.Finding)}</li>"
                    : $"<li>Ours: {Esc(p.Finding)}</li>");
            if (c.Note.Length > 0) sb.Append($"<li>Note: {Esc(c.Note)}</li>");
            sb.Append("</ul></section>\n");
        }
        sb.Append("</body></html>\n");
        return sb.ToString();
    }
}
