using System.Globalization;

namespace PeftSharp.Cli.Comparison;

/// <summary>Number formatting shared by the reports (invariant culture, so reports read the same everywhere).</summary>
internal static class Fmt
{
    static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static string Num(double v, int decimals) => v.ToString("F" + decimals, C);
    public static string Num(double? v, int decimals) => v is double d ? Num(d, decimals) : "—";
    public static string Pct(double fraction) => (fraction * 100).ToString("F1", C) + " %";
    public static string Pct(double? fraction) => fraction is double f ? Pct(f) : "—";
    public static string Pct(double? fraction, double? spread) =>
        fraction is double f ? (f * 100).ToString("F1", C) + PlusMinus(spread, x => (x * 100).ToString("F1", C)) + " %" : "—";
    public static string SignedPct(double fraction) => (fraction >= 0 ? "+" : "") + (fraction * 100).ToString(Math.Abs(fraction) < 0.01 ? "F2" : "F1", C) + " %";
    public static string Sci(double v) => v.ToString("0.###e+0", C);
    public static string Count(long? n) => n is long v ? v.ToString("N0", C) : "—";

    /// <summary>Every memory figure of the reports is in MiB (2^20 bytes), so they compare at a glance.</summary>
    public static string Mib(double mib) => MibNumber(mib) + " MiB";
    public static string Mib(double? mib) => mib is double m ? Mib(m) : "—";
    /// <summary>"mean ± spread MiB", the spread with the mean's decimals.</summary>
    public static string Mib(double? mib, double? spread) => mib is double m ? MibNumber(m) + PlusMinus(spread, x => x.ToString(MibFormat(m), C)) + " MiB" : "—";
    public static string Bytes(long? bytes) => bytes is long b ? Mib(b / 1048576.0) : "—";

    static string MibNumber(double mib) => mib.ToString(MibFormat(mib), C);
    static string MibFormat(double mib) => Math.Abs(mib) >= 100 ? "F0" : Math.Abs(mib) >= 10 ? "F1" : Math.Abs(mib) >= 1 ? "F2" : "F3";

    /// <summary>" ± s" in the mean's format, or "" when there is no spread (a single run).</summary>
    public static string PlusMinus(double? spread, Func<double, string> format) => spread is double s ? " ± " + format(s) : "";
    public static string Num(double? v, double? spread, int decimals) => v is double d ? Num(d, decimals) + PlusMinus(spread, x => Num(x, decimals)) : "—";

    public static string Seconds(double? s, double? spread) => s is null ? "—" : Seconds(s) + PlusMinus(spread, x => Seconds(x));
    public static string Seconds(double? s) => s is double v ? (v >= 60 ? $"{(int)(v / 60)} min {(v % 60).ToString("F0", C)} s" : v.ToString("F1", C) + " s") : "—";
}
