namespace PeftSharp.Cli.Comparison;

/// <summary>The figures a claim compares between two methods.</summary>
internal enum Figure { EvalLoss, ExactMatch, TokensPerSecond, PeakRss }

/// <summary>
/// Run-to-run noise of a method's figures: the sample standard deviation over its seeds when it ran with several
/// (<see cref="MethodResult.Spread"/>), else an assumed one. The assumed values were measured with this tool: the
/// demo task (embedded model, 150 steps) with lora, dora and qlora at seeds 42, 43 and 44, one thread, on a 2-core
/// machine shared with other jobs (<see cref="AssumedSource"/>). A difference between two methods counts only when it
/// exceeds the sum of their two spreads.
/// </summary>
internal static class RunNoise
{
    /// <summary>Assumed standard deviation of one run's eval loss, relative to the loss.</summary>
    public const double EvalLossRelative = 0.027;
    /// <summary>Assumed standard deviation of one run's exact match (absolute fraction of the eval examples).</summary>
    public const double ExactMatchAbsolute = 0.015;
    /// <summary>Assumed standard deviation of one run's mean tokens/s, relative (machine load dominates it).</summary>
    public const double TokensPerSecondRelative = 0.30;
    /// <summary>Assumed standard deviation of one run's peak RSS, relative.</summary>
    public const double PeakRssRelative = 0.005;

    public const string AssumedSource = "pooled over lora, dora and qlora from peft compare --threads 1 on the demo task at seeds 42, 43 and 44, " +
                                        "on a 2-core machine shared with other jobs; throughput noise depends on the machine's load";

    /// <summary>Whether the figure's spread was measured (several seeds) rather than assumed.</summary>
    public static bool Measured(MethodResult r) => r.Spread != null;

    /// <summary>The standard deviation of one figure of a method (0 when the figure itself is missing).</summary>
    public static double Of(MethodResult r, Figure f) => f switch
    {
        Figure.EvalLoss => r.Spread?.EvalLoss ?? EvalLossRelative * Math.Abs(r.EvalLoss ?? 0),
        Figure.ExactMatch => r.Spread?.ExactMatch ?? ExactMatchAbsolute,
        Figure.TokensPerSecond => r.Spread?.TokensPerSecond ?? TokensPerSecondRelative * Math.Abs(r.TokensPerSecond ?? 0),
        _ => r.Spread?.PeakRssMib ?? PeakRssRelative * Math.Abs(r.PeakRssMib ?? 0),
    };

    /// <summary>The noise of a difference between two methods' figures: the sum of their spreads.</summary>
    public static double OfDifference(MethodResult a, MethodResult b, Figure f) => Of(a, f) + Of(b, f);

    /// <summary>+1 when <paramref name="a"/> exceeds <paramref name="b"/> by more than the noise, −1 when it falls short by
    /// more, 0 when the difference is within the noise.</summary>
    public static int Order(double a, double b, double noise) => a - b > noise ? 1 : b - a > noise ? -1 : 0;

    /// <summary>"measured" or "assumed" noise, for the text of a finding.</summary>
    public static string Kind(MethodResult a, MethodResult b) => Measured(a) && Measured(b) ? "spread over the seeds" : "assumed one-seed noise";
}
