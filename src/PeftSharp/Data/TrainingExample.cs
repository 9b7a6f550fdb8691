using PeftSharp.Templates;

namespace PeftSharp.Data;

/// <summary>One record of a training file, validated but not yet tokenized. Exactly the fields of its
/// <see cref="Format"/> are set (Alpaca records keep their fields and are turned into prompt/completion by
/// <see cref="AlpacaPrompt"/>). <see cref="File"/> and <see cref="Line"/> locate it for error messages.</summary>
public sealed class TrainingExample
{
    public required DatasetFormat Format { get; init; }
    public required string File { get; init; }
    /// <summary>1-based line of the record (JSONL: its line; JSON array: the line where the element starts).</summary>
    public required int Line { get; init; }

    public string? Text { get; init; }
    public string? Prompt { get; init; }
    public string? Completion { get; init; }
    public IReadOnlyList<ChatMessage>? Messages { get; init; }
    public string? Instruction { get; init; }
    public string? Input { get; init; }
    public string? Output { get; init; }

    public string Location => $"{File}:{Line}";
}
