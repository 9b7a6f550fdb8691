namespace PeftSharp;

/// <summary>A user-facing error: bad input, a malformed file, an unsupported configuration. The message names the
/// file, key or line and what was expected; the CLI prints it as one line.</summary>
public class PeftException : Exception
{
    /// <summary>An error with a one-line message (name the file, key or line, and what was expected).</summary>
    /// <param name="message">The message the user sees.</param>
    public PeftException(string message) : base(message) { }
    /// <summary>An error with a one-line message, keeping the exception that caused it.</summary>
    /// <param name="message">The message the user sees.</param>
    /// <param name="inner">The underlying exception (e.g. a JSON or IO error).</param>
    public PeftException(string message, Exception inner) : base(message, inner) { }
}
