namespace PeftSharp.Cli;

/// <summary>
/// Turns user-facing failures into one clear line on stderr and exit code 1 — never a stack trace.
/// Library code throws <see cref="PeftSharp.PeftException"/> (or IO/format exceptions) with a message that names the
/// file, key or line and what was expected.
/// </summary>
internal static class CliErrors
{
    public static int Run(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (e is PeftException or IOException or UnauthorizedAccessException or FormatException or ArgumentException or NotSupportedException or InvalidDataException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
