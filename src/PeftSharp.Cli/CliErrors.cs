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
        catch (Exception e) when (PeftSharp.IO.FiniteJson.IsNonFiniteError(e))
        {
            Console.Error.WriteLine("error: a result to be written as JSON is NaN or infinite (the model or the training " +
                                    $"produced a non-finite value; check the weights and the learning rate): {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is PeftException or IOException or UnauthorizedAccessException or FormatException or ArgumentException or NotSupportedException or InvalidDataException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
