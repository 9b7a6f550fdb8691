using System.Text.Json;
using PeftSharp.Inference;
using PeftSharp.Server.Engine;
using PeftSharp.Templates;

namespace PeftSharp.Server.Http;

/// <summary>A parsed /v1/completions or /v1/chat/completions body: the prompt as tokens, the adapter and the sampling settings.</summary>
internal sealed record CompletionRequest(string Model, GenerationRequest Generation, IReadOnlyList<string> Stops, bool Stream,
    bool IncludeUsage, bool Echo, string PromptText, bool Logprobs)
{
    /// <summary>Parses the shared fields; <paramref name="chat"/> selects the messages form (else prompt).</summary>
    public static CompletionRequest Parse(JsonRequest r, ServeEngine engine, string baseName, bool chat)
    {
        var model = r.RequiredString("model");
        string? adapter = model == baseName ? null : model;
        if (adapter != null && !engine.Adapters.Contains(adapter))
            throw new ApiError(404, $"the model '{model}' does not exist (models: {string.Join(", ", new[] { baseName }.Concat(engine.Adapters))})",
                param: "model", code: "model_not_found");
        var tokenizer = engine.Model.Tokenizer ?? throw new ApiError(500, "the model has no tokenizer.json", "server_error");

        string text;
        int[] ids;
        if (chat)
        {
            var template = engine.Model.ChatTemplate ?? throw ApiError.BadRequest("this model has no chat template; use /v1/completions", "messages");
            text = template.Render(Messages(r), addGenerationPrompt: true);
            ids = tokenizer.Encode(text, addSpecial: false);
        }
        else
        {
            text = Prompt(r);
            ids = tokenizer.Encode(text, addSpecial: true);
        }

        int? max = chat ? r.Int("max_completion_tokens", 1, int.MaxValue) ?? r.Int("max_tokens", 1, int.MaxValue) : r.Int("max_tokens", 1, int.MaxValue);
        if (ids.Length >= engine.Context || (max is int m && ids.Length + (long)m > engine.Context))
            throw ApiError.BadRequest($"this model's maximum context length is {engine.Context} tokens; the prompt has {ids.Length} tokens" +
                (max is int mm ? $" and {mm} were requested for the completion" : ""), chat ? "messages" : "prompt", "context_length_exceeded");
        int maxNew = max ?? (chat ? engine.Context - ids.Length : Math.Min(16, engine.Context - ids.Length));

        double temperature = r.Number("temperature", 0, 2) ?? 1.0;
        double topP = r.Number("top_p", double.Epsilon, 1) ?? 1.0;
        if (r.Has("n") && r.Int("n", 1, 1) != 1) throw ApiError.BadRequest("only n = 1 is supported", "n");
        ulong seed = r.Seed("seed") ?? (ulong)Random.Shared.NextInt64();
        int topLogprobs = 0;
        if (!chat && r.Get("logprobs") is { } lp)
            topLogprobs = lp.ValueKind is JsonValueKind.True or JsonValueKind.False ? throw JsonRequest.Type("logprobs", "an integer 0…5") : r.Int("logprobs", 0, 5) ?? 0;
        bool wantLogprobs = !chat && r.Has("logprobs");
        var stream = r.Bool("stream", false);
        bool includeUsage = false;
        if (r.Get("stream_options") is { } so)
        {
            if (so.ValueKind != JsonValueKind.Object) throw JsonRequest.Type("stream_options", "an object");
            includeUsage = new JsonRequest(so).Bool("include_usage", false);
        }
        var sampling = new SamplingOptions((float)temperature, 0, (float)topP, 1, seed);
        var generation = new GenerationRequest(ids, adapter, maxNew, sampling, topLogprobs);
        return new CompletionRequest(model, generation, r.Stops("stop"), stream, includeUsage, !chat && r.Bool("echo", false), text, wantLogprobs);
    }

    static string Prompt(JsonRequest r)
    {
        if (r.Get("prompt") is not { } p) throw ApiError.BadRequest("'prompt' is required", "prompt");
        if (p.ValueKind == JsonValueKind.String) return p.GetString()!;
        if (p.ValueKind == JsonValueKind.Array && p.GetArrayLength() == 1 && p[0].ValueKind == JsonValueKind.String) return p[0].GetString()!;
        throw JsonRequest.Type("prompt", "a string (one prompt per request)");
    }

    static List<ChatMessage> Messages(JsonRequest r)
    {
        if (r.Get("messages") is not { } m) throw ApiError.BadRequest("'messages' is required", "messages");
        if (m.ValueKind != JsonValueKind.Array || m.GetArrayLength() == 0) throw JsonRequest.Type("messages", "a non-empty array");
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (var e in m.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (e.ValueKind != JsonValueKind.Object) throw JsonRequest.Type(at, "an object");
            if (!e.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String) throw JsonRequest.Type(at + ".role", "a string");
            string content = "";
            if (e.TryGetProperty("content", out var c))
            {
                if (c.ValueKind == JsonValueKind.String) content = c.GetString()!;
                else if (c.ValueKind == JsonValueKind.Array)
                    foreach (var part in c.EnumerateArray())
                    {
                        if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var t) || t.GetString() != "text"
                            || !part.TryGetProperty("text", out var tx) || tx.ValueKind != JsonValueKind.String)
                            throw ApiError.BadRequest($"{at}.content: only text parts are supported", at + ".content");
                        content += tx.GetString();
                    }
                else if (c.ValueKind != JsonValueKind.Null) throw JsonRequest.Type(at + ".content", "a string or an array of text parts");
            }
            list.Add(new ChatMessage(role.GetString()!, content));
        }
        return list;
    }
}
