namespace PeftSharp.Data;

/// <summary>The standard Alpaca prompt (tatsu-lab/stanford_alpaca): the record's output is the completion.</summary>
internal static class AlpacaPrompt
{
    public static string Format(string instruction, string? input)
    {
        if (string.IsNullOrEmpty(input))
            return "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
                   $"### Instruction:\n{instruction}\n\n### Response:\n";
        return "Below is an instruction that describes a task, paired with an input that provides further context. " +
               "Write a response that appropriately completes the request.\n\n" +
               $"### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";
    }
}
