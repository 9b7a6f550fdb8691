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

    const string InMemory = "(in memory)";

    /// <summary>A plain-text example: every token is trained on.</summary>
    public static TrainingExample FromText(string text) =>
        new() { Format = DatasetFormat.Text, File = InMemory, Line = 0, Text = text };

    /// <summary>A prompt and its completion: only the completion's tokens are trained on (unless TrainOnPrompt).</summary>
    public static TrainingExample FromPromptCompletion(string prompt, string completion) =>
        new() { Format = DatasetFormat.PromptCompletion, File = InMemory, Line = 0, Prompt = prompt, Completion = completion };

    /// <summary>A conversation rendered through the model's chat template: only assistant turns are trained on.</summary>
    public static TrainingExample FromMessages(IReadOnlyList<ChatMessage> messages) =>
        new() { Format = DatasetFormat.Messages, File = InMemory, Line = 0, Messages = messages };
}
