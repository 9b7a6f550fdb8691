namespace PeftSharp;

/// <summary>A user-facing error: bad input, a malformed file, an unsupported configuration. The message names the
/// file, key or line and what was expected; the CLI prints it as one line.</summary>
public class PeftException : Exception
{
    public PeftException(string message) : base(message) { }
    public PeftException(string message, Exception inner) : base(message, inner) { }
}
