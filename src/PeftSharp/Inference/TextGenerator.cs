using PeftSharp.Compute;
using PeftSharp.Peft;
using PeftSharp.Templates;

namespace PeftSharp.Inference;

/// <summary>How much to generate and how to choose tokens.</summary>
public sealed record GenerationOptions
{
    /// <summary>New tokens at most (default 64); generation also stops at an end-of-sequence token or the context length.</summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>Token choice (default greedy).</summary>
    public SamplingOptions Sampling { get; init; } = SamplingOptions.Greedy;

    /// <summary>Texts that end the generation when they appear (not included in the result).</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];
}

/// <summary>
/// Text in, text out, over a <see cref="PeftModel"/> and any of its adapters: completions of a prompt and replies to a
/// conversation through the model's chat template, whole or streamed piece by piece. Every call runs in its own
/// inference session, so calls with different adapters may run concurrently on one loaded model.
/// </summary>
public sealed class TextGenerator
{
    readonly PeftModel _model;
    readonly ComputeContext _compute;

    /// <summary>A generator over <paramref name="model"/> (which must have a tokenizer) computing on <paramref name="compute"/>.</summary>
    public TextGenerator(PeftModel model, ComputeContext compute)
    {
        _model = model;
        _compute = compute;
        if (model.Tokenizer == null) throw new PeftException("text generation needs the model's tokenizer: load the model with PeftModel.Load");
    }

    /// <summary>The continuation of <paramref name="prompt"/> with adapter <paramref name="adapter"/> (null: the base model).</summary>
    public string Complete(string prompt, string? adapter = null, GenerationOptions? options = null, CancellationToken cancel = default) =>
        string.Concat(CompleteStreaming(prompt, adapter, options, cancel));

    /// <summary>The continuation of <paramref name="prompt"/> as it is produced, in pieces of text.</summary>
    public IEnumerable<string> CompleteStreaming(string prompt, string? adapter = null, GenerationOptions? options = null, CancellationToken cancel = default) =>
        Stream(_model.Tokenizer!.Encode(prompt, addSpecial: true), adapter, options ?? new GenerationOptions(), cancel);

    /// <summary>The assistant's reply to <paramref name="messages"/>, rendered through the model's chat template.</summary>
    public string Chat(IReadOnlyList<ChatMessage> messages, string? adapter = null, GenerationOptions? options = null, CancellationToken cancel = default) =>
        string.Concat(ChatStreaming(messages, adapter, options, cancel));

    /// <summary>The assistant's reply as it is produced.</summary>
    public IEnumerable<string> ChatStreaming(IReadOnlyList<ChatMessage> messages, string? adapter = null, GenerationOptions? options = null,
        CancellationToken cancel = default)
    {
        var template = _model.ChatTemplate ?? throw new PeftException("this model has no chat template (tokenizer_config.json chat_template); use Complete");
        string text = template.Render(messages, addGenerationPrompt: true);
        // The template writes the BOS token itself when the model wants one.
        return Stream(_model.Tokenizer!.Encode(text, addSpecial: false), adapter, options ?? new GenerationOptions(), cancel);
    }

    IEnumerable<string> Stream(int[] promptIds, string? adapter, GenerationOptions options, CancellationToken cancel)
    {
        if (options.MaxNewTokens < 0) throw new PeftException($"max new tokens must be ≥ 0, got {options.MaxNewTokens}");
        var tokenizer = _model.Tokenizer!;
        var stopIds = new HashSet<int>(_model.Model.Config.EosTokenIds);
        if (tokenizer.EosId is int eos) stopIds.Add(eos);
        using var use = _model.Use(adapter);
        var produced = new List<int>();
        int emitted = 0;
        foreach (var id in Generator.Generate(_model.Model, _compute, _model.Route(adapter), promptIds, options.MaxNewTokens, options.Sampling, stopIds))
        {
            cancel.ThrowIfCancellationRequested();
            if (stopIds.Contains(id)) break;
            produced.Add(id);
            // Decode the whole continuation and hand out what is new, holding back a split multi-byte character.
            var all = tokenizer.Decode(produced.ToArray(), skipSpecial: true);
            if (all.EndsWith('\uFFFD')) continue;
            int stopAt = options.Stop.Select(s => all.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
            if (stopAt >= 0)
            {
                if (stopAt > emitted) yield return all[emitted..stopAt];
                yield break;
            }
            // Hold back a tail that could be the start of a stop text.
            int hold = options.Stop.Count == 0 ? 0 : options.Stop.Max(s => s.Length) - 1;
            int safe = Math.Max(emitted, all.Length - hold);
            if (safe > emitted) { yield return all[emitted..safe]; emitted = safe; }
        }
        var final = tokenizer.Decode(produced.ToArray(), skipSpecial: true).TrimEnd('\uFFFD');
        if (final.Length > emitted) yield return final[emitted..];
    }
}
