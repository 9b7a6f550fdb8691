using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using PeftSharp.Inference;
using PeftSharp.Server.Engine;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace PeftSharp.Server;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IChatClient"/> over a <see cref="ServeEngine"/> and one of its adapters (null:
/// the base), so .NET apps use a PeftSharp model in-process. Requests share the engine's continuous batch with the HTTP
/// server's. The conversation goes through the model's chat template with the generation prompt added; ChatOptions'
/// MaxOutputTokens, Temperature (default 0: greedy), TopP, Seed and StopSequences apply; ModelId picks another adapter.
/// </summary>
public sealed class PeftChatClient(ServeEngine engine, string? adapter = null) : IChatClient
{
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (stream, streamer) = Start(messages, options, cancellationToken);
        await foreach (var _ in streamer.ReadAsync(stream, cancellationToken)) { }
        return new ChatResponse(new AiChatMessage(ChatRole.Assistant, streamer.Text))
        {
            ModelId = ModelOf(options),
            FinishReason = Finish(streamer.FinishReason),
            Usage = new UsageDetails { InputTokenCount = stream.PromptTokens, OutputTokenCount = streamer.CompletionTokens, TotalTokenCount = stream.PromptTokens + streamer.CompletionTokens },
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (stream, streamer) = Start(messages, options, cancellationToken);
        try
        {
            await foreach (var piece in streamer.ReadAsync(stream, cancellationToken))
                if (piece.Text.Length > 0) yield return new ChatResponseUpdate(ChatRole.Assistant, piece.Text) { ModelId = ModelOf(options) };
            yield return new ChatResponseUpdate { Role = ChatRole.Assistant, FinishReason = Finish(streamer.FinishReason), ModelId = ModelOf(options) };
        }
        finally { stream.Cancel(); }
    }

    string ModelOf(ChatOptions? o) => o?.ModelId ?? adapter ?? "base";

    static ChatFinishReason? Finish(string? reason) => reason == FinishReasons.Length ? ChatFinishReason.Length : ChatFinishReason.Stop;

    (GenerationStream, TextStreamer) Start(IEnumerable<AiChatMessage> messages, ChatOptions? options, CancellationToken ct)
    {
        var pm = engine.Model;
        var tokenizer = pm.Tokenizer ?? throw new PeftException("the model has no tokenizer");
        var template = pm.ChatTemplate ?? throw new PeftException("the model has no chat template");
        var turns = messages.Select(m => new PeftSharp.Templates.ChatMessage(m.Role.Value, m.Text)).ToList();
        var ids = tokenizer.Encode(template.Render(turns, addGenerationPrompt: true), addSpecial: false);
        string? name = options?.ModelId ?? adapter;
        var sampling = new SamplingOptions(options?.Temperature ?? 0f, options?.TopK ?? 0, options?.TopP ?? 1f, 1, unchecked((ulong)(options?.Seed ?? 0)));
        int maxNew = options?.MaxOutputTokens ?? engine.Context - ids.Length;
        var stream = engine.Submit(new GenerationRequest(ids, name, maxNew, sampling), ct);
        return (stream, new TextStreamer(tokenizer, options?.StopSequences?.ToList() ?? []));
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey == null && serviceType.IsInstanceOfType(this) ? this
        : serviceKey == null && serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("peftsharp", null, adapter ?? "base")
        : null;

    /// <summary>The engine belongs to the caller; nothing to release here.</summary>
    public void Dispose() { }
}
