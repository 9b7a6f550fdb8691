using System.Globalization;

namespace PeftSharp.Cli.Training;

/// <summary>How the training commands print numbers.</summary>
internal static class NumberFormat
{
    /// <summary>A learning rate in the form people write them: 3.0e-3, 2.0e-4 (0 as 0).</summary>
    public static string Lr(double v) => v == 0 ? "0" : v.ToString("0.0e+0", CultureInfo.InvariantCulture).Replace("e+", "e");

    /// <summary>A setting's number: plain for ordinary magnitudes, 1.0e-8 style for tiny ones.</summary>
    public static string Number(double v) => v != 0 && Math.Abs(v) < 1e-3 ? Lr(v) : v.ToString("G", CultureInfo.InvariantCulture);
}
