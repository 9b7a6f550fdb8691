using System.Globalization;
using System.Text.RegularExpressions;

namespace PeftSharp.Planning;

/// <summary>
/// Memory sizes as people write them. Decimal units are powers of 1000: B, KB, MB, GB, TB (GB = 1e9 bytes).
/// Binary units are powers of 1024: KiB, MiB, GiB, TiB (GiB = 2^30 bytes). A bare K/M/G/T (as in `free -g`, JVM -Xmx,
/// docker) is binary. No unit = bytes. Case-insensitive, optional space, decimals allowed ("1.5G").
/// </summary>
internal static partial class ByteSize
{
    public const long GB = 1_000_000_000L;
    public const long GiB = 1L << 30;
    public const long MiB = 1L << 20;

    [GeneratedRegex(@"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")]
    private static partial Regex SizePattern();

    /// <summary>Bytes of <paramref name="text"/>; <paramref name="option"/> names the option in the error message.</summary>
    public static long Parse(string text, string option = "--budget")
    {
        var m = SizePattern().Match(text ?? "");
        if (!m.Success)
            throw new PeftException($"{option}: cannot read \"{text}\" as a memory size (expected e.g. 24GB, 24GiB, 512MB, 1.5G)");
        double value = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        double unit = m.Groups[2].Value.ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "KB" => 1e3, "MB" => 1e6, "GB" => 1e9, "TB" => 1e12,
            "K" or "KIB" => 1L << 10, "M" or "MIB" => 1L << 20, "G" or "GIB" => 1L << 30, "T" or "TIB" => 1L << 40,
            var u => throw new PeftException($"{option}: unknown unit \"{m.Groups[2].Value}\" in \"{text}\" (expected B, KB, MB, GB, TB = powers of 1000, or KiB, MiB, GiB, TiB, K, M, G, T = powers of 1024)"),
        };
        double bytes = value * unit;
        if (bytes <= 0 || bytes > long.MaxValue / 2)
            throw new PeftException($"{option}: memory size \"{text}\" must be positive and finite");
        return (long)Math.Round(bytes);
    }

    /// <summary>Binary units with one decimal: "1.5 GiB", "312.0 MiB".</summary>
    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 40 => $"{bytes / (double)(1L << 40):0.0} TiB",
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };
}
