namespace PeftSharp.IO;

/// <summary>JSON has no NaN or infinity, and System.Text.Json's own error for one names nothing. Every number a
/// writer emits that could be non-finite goes through <see cref="Check"/>, so the error says which value it was.</summary>
internal static class FiniteJson
{
    /// <summary>Returns <paramref name="value"/>, or throws naming <paramref name="what"/> when it is NaN or infinite.</summary>
    public static double Check(double value, string what) =>
        double.IsFinite(value) ? value
            : throw new PeftException($"{what} is {value}, not a finite number, so it cannot be written as JSON " +
                                      "(the weights or an option produced a NaN or infinity)");

    /// <summary>The message for System.Text.Json's own non-finite error, where no writer named the value.</summary>
    public static bool IsNonFiniteError(Exception e) =>
        e is ArgumentException && e.Message.Contains("cannot be written as valid JSON", StringComparison.Ordinal);
}
