namespace PeftSharp.Templates;

/// <summary>One turn of a conversation. <paramref name="Extra"/> holds further keys a template may read
/// (e.g. "reasoning_content", "tool_calls"), passed to the template as they are.</summary>
public sealed record ChatMessage(string Role, string Content, IReadOnlyDictionary<string, object?>? Extra = null);
