namespace PeftSharp.Cli.Comparison;

/// <summary>What the reports say about seeds and run-to-run noise, and the per-seed rows behind a mean.</summary>
internal static class SeedsNote
{
    public static string Text(ComparisonReport report)
    {
        var seeds = report.Settings.SeedList;
        if (seeds.Count == 1)
            return $"One seed ({seeds[0]}) per method: every figure is a single run, so this comparison does not measure its own run-to-run noise. " +
                   "A difference between two methods decides a verdict only when it exceeds their assumed one-run standard deviations added: " +
                   $"eval loss ±{Fmt.Pct(RunNoise.EvalLossRelative)}, exact match ±{Fmt.Num(RunNoise.ExactMatchAbsolute * 100, 1)} points, " +
                   $"tokens/s ±{Fmt.Pct(RunNoise.TokensPerSecondRelative)}, peak RSS ±{Fmt.Pct(RunNoise.PeakRssRelative)} per run " +
                   $"({RunNoise.AssumedSource}). Rerun with --seeds 3 to measure the noise of this setup.";
        return $"{seeds.Count} seeds ({string.Join(", ", seeds)}) per method: each figure is the mean ± the sample standard deviation over the seeds, " +
               "the loss curves are the mean per step with the band from the lowest to the highest seed, and a verdict is called only when " +
               "a difference between two methods exceeds their two spreads added.";
    }

    public static readonly string[] RunHeaders = ["method", "seed", "status", "final train loss", "eval loss", "exact match", "tokens/s", "peak RSS"];

    /// <summary>One row per run (only worth showing with several seeds).</summary>
    public static IEnumerable<string[]> RunRows(ComparisonReport report) => report.Runs.Select(r => new[]
    {
        r.Method, string.Join(",", r.Seeds), r.Succeeded ? r.Status.ToString().ToLowerInvariant() : "FAILED",
        Fmt.Num(r.FinalTrainLoss, 4), Fmt.Num(r.EvalLoss, 4), Fmt.Pct(r.ExactMatch), Fmt.Num(r.TokensPerSecond, 0), Fmt.Mib(r.PeakRssMib),
    });
}
