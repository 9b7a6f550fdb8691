using System.Text;

namespace PeftSharp.Cli.Comparison;

/// <summary>report.md: settings, the table, failures, the seed claims and what to keep in mind reading them.</summary>
internal static class MarkdownReport
{
    public static string Render(ComparisonReport report)
    {
        var s = report.Settings;
        var sb = new StringBuilder();
        sb.AppendLine("# PeftSharp method comparison");
        sb.AppendLine();
        sb.AppendLine($"Generated {report.CreatedUtc:yyyy-MM-dd HH:mm} UTC on {Esc(report.Machine)}.");
        sb.AppendLine();
        sb.AppendLine("## Setup");
        sb.AppendLine();
        foreach (var (k, v) in SettingsLines(report)) sb.AppendLine($"- **{k}**: {Esc(v)}");
        sb.AppendLine();
        sb.AppendLine($"Every method ran in its own process (so each peak RSS is that process's own) with the same model, data, steps, seed{(s.Seeds > 1 ? "s" : "")}, " +
                      "learning-rate schedule, rank and alpha.");
        var diffs = report.DeliberateDifferences().ToList();
        if (diffs.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("Deliberate differences:");
            sb.AppendLine();
            foreach (var d in diffs) sb.AppendLine($"- {Esc(d)}");
        }
        sb.AppendLine();
        sb.AppendLine("## Results");
        sb.AppendLine();
        sb.AppendLine(Esc(SeedsNote.Text(report)));
        sb.AppendLine();
        sb.AppendLine("| " + string.Join(" | ", ResultTable.Headers) + " |");
        sb.AppendLine("|" + string.Join("|", ResultTable.Headers.Select((_, c) => ResultTable.IsNumeric(c) ? "---:" : "---")) + "|");
        foreach (var row in ResultTable.Rows(report)) sb.AppendLine("| " + string.Join(" | ", row.Select(Esc)) + " |");
        sb.AppendLine();
        sb.AppendLine("Trainable % is of all parameters including the adapter's. Frozen weights are the bytes of the base weights " +
                      "that are not trained (4-bit for the quantized methods). Peak RSS is the training process's VmHWM. Tokens/s is the " +
                      "mean over the training steps; wall time is the training loop's (model loading and the task metric excluded). Saved size is the adapter folder (the full model folder for full fine-tuning). " +
                      "Exact match (before → after) is greedy decoding on the eval completions, where the data set defines them.");
        if (report.Settings.Seeds > 1)
        {
            sb.AppendLine();
            sb.AppendLine("### Every run");
            sb.AppendLine();
            sb.AppendLine("| " + string.Join(" | ", SeedsNote.RunHeaders) + " |");
            sb.AppendLine("|" + string.Join("|", SeedsNote.RunHeaders.Select((_, c) => c >= 3 ? "---:" : "---")) + "|");
            foreach (var row in SeedsNote.RunRows(report)) sb.AppendLine("| " + string.Join(" | ", row.Select(Esc)) + " |");
        }
        var failed = report.Results.Where(r => !r.Succeeded).ToList();
        if (failed.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("### Failed methods");
            sb.AppendLine();
            foreach (var f in failed) sb.AppendLine($"- **{Esc(f.Method)}**: `{f.Error?.Replace("`", "'")}` (log: {Esc(f.LogFile ?? "none")})");
        }
        sb.AppendLine();
        sb.AppendLine("## Seed claims");
        sb.AppendLine();
        sb.AppendLine("The seed documents describe GPU runs of 7B–65B models; this is a small model on CPU, so only the direction of each effect " +
                      "is comparable, not its size.");
        sb.AppendLine();
        foreach (var c in report.Claims)
        {
            sb.AppendLine($"### {Esc(c.Title)}: **{c.VerdictText}**");
            sb.AppendLine();
            sb.AppendLine($"- Claim ({Esc(c.Source.Citation)}): {Esc(c.Quote)}");
            sb.AppendLine($"- Our measure: {Esc(c.Definition)}");
            foreach (var p in c.Parts)
                sb.AppendLine(c.Parts.Count > 1 ? $"- Ours, {Esc(p.Name)} (**{ClaimCheck.Text(p.Verdict)}**): {Esc(p.Finding)}" : $"- Ours: {Esc(p.Finding)}");
            if (c.Note.Length > 0) sb.AppendLine($"- Note: {Esc(c.Note)}");
            sb.AppendLine();
        }
        return sb.ToString();
    }

    public static IEnumerable<(string Key, string Value)> SettingsLines(ComparisonReport report)
    {
        var s = report.Settings;
        yield return ("model", s.ModelDir);
        yield return ("data", s.DataFile + (s.EvalFile != null ? $" (eval {s.EvalFile})" : " (eval: held-out fraction)"));
        if (s.ConfigFile != null) yield return ("further settings", s.ConfigFile);
        yield return ("methods", string.Join(", ", s.Methods));
        yield return ("steps", s.MaxSteps.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return ("seeds", s.Seeds == 1 ? $"{s.Seed} (one run per method)" : $"{string.Join(", ", s.SeedList)} ({s.Seeds} runs per method)");
        yield return ("learning rate", $"{Fmt.Sci(s.LearningRate)}, {s.LrScheduler} schedule");
        yield return ("rank / alpha", $"r = {s.R}, lora_alpha = {s.LoraAlpha.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        yield return ("task metric", s.TaskEval > 0 ? $"exact match on up to {s.TaskEval} eval examples" : "off");
        yield return ("threads", s.Threads.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Escapes Markdown table/inline syntax in free text.</summary>
    static string Esc(string t) => t.Replace("\\", "\\\\").Replace("|", "\\|").Replace("*", "\\*").Replace("_", "\\_").Replace("<", "&lt;")
        .Replace("\r", " ").Replace("\n", " ");
}
