using PeftSharp.Templates;

namespace PeftSharp.Data;

/// <summary>One record of a training file, validated but not yet tokenized. Exactly the fields of its
/// <see cref="Format"/> are set (Alpaca records keep their fields and are turned into prompt/completion by
/// <see cref="AlpacaPrompt"/>). <see cref="File"/> and <see cref="Line"/> locate it for error messages.</summary>
public sealed class TrainingExample
{
    /// <summary>The record's shape (never <see cref="DatasetFormat.Auto"/>); decides which fields below are set.</summary>
    public required DatasetFormat Format { get; init; }
    /// <summary>Path of the file the record came from.</summary>
    public required string File { get; init; }
    /// <summary>1-based line of the record (JSONL: its line; JSON array: the line where the element starts).</summary>
    public required int Line { get; init; }

    /// <summary>"text" (<see cref="DatasetFormat.Text"/>): trained on in full.</summary>
    public string? Text { get; init; }
    /// <summary>"prompt" (<see cref="DatasetFormat.PromptCompletion"/>): masked from the loss by default.</summary>
    public string? Prompt { get; init; }
    /// <summary>"completion" (<see cref="DatasetFormat.PromptCompletion"/>): trained on.</summary>
    public string? Completion { get; init; }
    /// <summary>"messages" (<see cref="DatasetFormat.Messages"/>): the conversation, rendered by the chat template.</summary>
    public IReadOnlyList<ChatMessage>? Messages { get; init; }
    /// <summary>Alpaca "instruction".</summary>
    public string? Instruction { get; init; }
    /// <summary>Alpaca "input" (may be empty: the prompt then has no Input section).</summary>
    public string? Input { get; init; }
    /// <summary>Alpaca "output": the trained completion.</summary>
    public string? Output { get; init; }

    /// <summary>"file:line", the prefix of error messages about this record.</summary>
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
