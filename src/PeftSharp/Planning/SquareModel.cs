using System.Globalization;

namespace PeftSharp.Planning;

/// <summary>
/// The back-of-the-envelope model of seed 004 ("Calculating Parameter Efficiencies"): a model of P parameters seen as one
/// square matrix of dimension D = ⌈√P⌉; a rank-r LoRA of it has A (r×D) and B (D×r), so 2·D·r parameters.
/// Only an illustration of scale — real counts come from <see cref="ParameterCounter"/>.
/// </summary>
internal static class SquareModel
{
    public sealed record Row(long TotalParameters, int Rank, long Dimension, long LoraParameters, double Percent)
    {
        public string PercentText => FormatPercent(Percent);
    }

    /// <summary>⌈√p⌉ in exact integer arithmetic (the double square root is only a first guess).</summary>
    public static long Dimension(long totalParameters)
    {
        if (totalParameters <= 0) throw new PeftException($"--params: parameter count must be > 0, got {totalParameters}");
        long d = (long)Math.Ceiling(Math.Sqrt(totalParameters));
        while (d > 0 && (d - 1) * (d - 1) >= totalParameters) d--;
        while (d * d < totalParameters) d++;
        return d;
    }

    public static Row Compute(long totalParameters, int rank)
    {
        if (rank <= 0) throw new PeftException($"--rank: rank must be > 0, got {rank}");
        long d = Dimension(totalParameters);
        long lora = 2 * d * rank;
        return new Row(totalParameters, rank, d, lora, 100.0 * lora / totalParameters);
    }

    /// <summary>As the seed prints percentages: rounded to 4 decimals, trailing zeros dropped ("40%", "0.0032%").</summary>
    public static string FormatPercent(double percent) =>
        Math.Round(percent, 4, MidpointRounding.AwayFromZero).ToString("0.####", CultureInfo.InvariantCulture) + "%";

    /// <summary>As the seed writes model sizes: exact multiples of 10^12/10^9/10^6/10^3 get T/B/M/K, others digits.</summary>
    public static string FormatCount(long n) => n switch
    {
        >= 1_000_000_000_000 when n % 1_000_000_000_000 == 0 => $"{n / 1_000_000_000_000}T",
        >= 1_000_000_000 when n % 1_000_000_000 == 0 => $"{n / 1_000_000_000}B",
        >= 1_000_000 when n % 1_000_000 == 0 => $"{n / 1_000_000}M",
        >= 10_000 when n % 1_000 == 0 => $"{n / 1_000}K",
        _ => n.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>"25", "4B", "7e9", "1.5M", "135M" → a parameter count.</summary>
    public static long ParseCount(string text, string option = "--params")
    {
        var s = text.Trim();
        double mult = 1;
        if (s.Length > 0 && char.IsLetter(s[^1]))
        {
            mult = char.ToUpperInvariant(s[^1]) switch
            {
                'K' => 1e3, 'M' => 1e6, 'B' => 1e9, 'T' => 1e12,
                _ => throw new PeftException($"{option}: cannot read \"{text}\" as a parameter count (expected e.g. 25, 1e6, 135M, 4B)"),
            };
            s = s[..^1];
        }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v) || v * mult < 1 || v * mult > 1e18)
            throw new PeftException($"{option}: cannot read \"{text}\" as a parameter count (expected e.g. 25, 1e6, 135M, 4B)");
        double n = Math.Round(v * mult);
        if (Math.Abs(n - v * mult) > 1e-6 * Math.Max(1, n))
            throw new PeftException($"{option}: \"{text}\" is not a whole number of parameters");
        return (long)n;
    }
}
