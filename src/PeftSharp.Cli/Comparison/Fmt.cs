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
    public static string SignedPct(double fraction) => (fraction >= 0 ? "+" : "") + (fraction * 100).ToString(Math.Abs(fraction) < 0.01 ? "F2" : "F1", C) + " %";
    public static string Sci(double v) => v.ToString("0.###e+0", C);
    public static string Mb(double mb) => mb.ToString("F0", C) + " MB";
    public static string Mb(double? mb) => mb is double m ? Mb(m) : "—";
    public static string Count(long? n) => n is long v ? v.ToString("N0", C) : "—";

    public static string Bytes(long? bytes)
    {
        if (bytes is not long b) return "—";
        if (b < 1024) return b.ToString(C) + " B";
        double v = b;
        string[] units = ["KiB", "MiB", "GiB", "TiB"];
        int u = -1;
        while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        return v.ToString(v >= 100 ? "F0" : v >= 10 ? "F1" : "F2", C) + " " + units[u];
    }

    public static string Seconds(double? s) => s is double v ? (v >= 60 ? $"{(int)(v / 60)} min {(v % 60).ToString("F0", C)} s" : v.ToString("F1", C) + " s") : "—";
}
