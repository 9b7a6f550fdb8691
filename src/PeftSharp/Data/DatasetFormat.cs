namespace PeftSharp.Data;

/// <summary>Record shapes a training file may hold.</summary>
public enum DatasetFormat
{
    /// <summary>Detected from the first valid record's keys.</summary>
    Auto,
    /// <summary>{"text": ...}: every token is trained on.</summary>
    Text,
    /// <summary>{"prompt": ..., "completion": ...}.</summary>
    PromptCompletion,
    /// <summary>{"messages": [{"role": ..., "content": ...}, ...]}, rendered through the chat template.</summary>
    Messages,
    /// <summary>Alpaca {"instruction": ..., "input": ..., "output": ...}.</summary>
    Alpaca,
}

internal static class DatasetFormats
{
    public static string Name(DatasetFormat f) => f switch
    {
        DatasetFormat.Auto => "auto",
        DatasetFormat.Text => "text",
        DatasetFormat.PromptCompletion => "prompt_completion",
        DatasetFormat.Messages => "messages",
        DatasetFormat.Alpaca => "alpaca",
        _ => f.ToString(),
    };

    /// <summary>Parses a user-given format name (auto, text, prompt_completion, messages/chat, alpaca); the
    /// hyphenated prompt-completion of earlier versions is still accepted.</summary>
    public static DatasetFormat Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "auto" => DatasetFormat.Auto,
        "text" => DatasetFormat.Text,
        "prompt-completion" or "prompt_completion" or "completion" => DatasetFormat.PromptCompletion,
        "messages" or "chat" => DatasetFormat.Messages,
        "alpaca" => DatasetFormat.Alpaca,
        _ => throw new PeftException($"unknown data set format '{name}' (expected auto, text, prompt_completion, messages or alpaca)"),
    };

    /// <summary>The keys a record of this format must have, for error messages.</summary>
    public static string Shape(DatasetFormat f) => f switch
    {
        DatasetFormat.Text => "{\"text\": string}",
        DatasetFormat.PromptCompletion => "{\"prompt\": string, \"completion\": string}",
        DatasetFormat.Messages => "{\"messages\": [{\"role\": string, \"content\": string}, ...]}",
        DatasetFormat.Alpaca => "{\"instruction\": string, \"input\": string (optional), \"output\": string}",
        _ => "one of {\"text\"}, {\"prompt\",\"completion\"}, {\"messages\"}, {\"instruction\",\"input\",\"output\"}",
    };
}
