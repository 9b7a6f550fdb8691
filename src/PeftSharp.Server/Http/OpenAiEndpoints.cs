using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using PeftSharp.Server.Engine;

namespace PeftSharp.Server.Http;

/// <summary>The OpenAI-compatible routes: /v1/models, /v1/completions, /v1/chat/completions (plain and SSE), /health.</summary>
internal static class OpenAiEndpoints
{
    public static void Map(WebApplication app, ServeEngine engine, string baseName)
    {
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        app.MapGet("/health", () => Results.Json(new { status = "ok", running = engine.Load.Running, waiting = engine.Load.Waiting }));
        app.MapGet("/v1/models", () =>
        {
            var data = new JsonArray();
            foreach (var id in new[] { baseName }.Concat(engine.Adapters))
                data.Add(new JsonObject { ["id"] = id, ["object"] = "model", ["created"] = created, ["owned_by"] = "peftsharp", ["parent"] = id == baseName ? null : baseName });
            return Results.Text(new JsonObject { ["object"] = "list", ["data"] = data }.ToJsonString(), "application/json");
        });
        app.MapPost("/v1/completions", (HttpContext http) => Complete(http, engine, baseName, chat: false));
        app.MapPost("/v1/chat/completions", (HttpContext http) => Complete(http, engine, baseName, chat: true));
    }

    static async Task Complete(HttpContext http, ServeEngine engine, string baseName, bool chat)
    {
        var ct = http.RequestAborted;
        var body = await JsonRequest.ReadAsync(http.Request.Body, ct);
        var req = CompletionRequest.Parse(body, engine, baseName, chat);
        var stream = engine.Submit(req.Generation, ct);
        var streamer = new TextStreamer(engine.Model.Tokenizer!, req.Stops);
        string id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var tokenizer = engine.Model.Tokenizer!;
        var logprobs = req.Logprobs ? new CompletionLogprobs(tokenizer, req.Echo ? req.PromptText.Length : 0) : null;

        JsonObject Usage() => new()
        {
            ["prompt_tokens"] = stream.PromptTokens, ["completion_tokens"] = streamer.CompletionTokens,
            ["total_tokens"] = stream.PromptTokens + streamer.CompletionTokens,
        };
        JsonObject Envelope(string obj, JsonArray choices) => new()
        {
            ["id"] = id, ["object"] = obj, ["created"] = created, ["model"] = req.Model, ["choices"] = choices,
        };

        if (!req.Stream)
        {
            await foreach (var piece in streamer.ReadAsync(stream, ct)) if (piece.Token != null) logprobs?.Add(piece.Token);
            string text = (req.Echo ? req.PromptText : "") + streamer.Text;
            var choice = chat
                ? new JsonObject { ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text }, ["logprobs"] = null, ["finish_reason"] = streamer.FinishReason }
                : new JsonObject { ["index"] = 0, ["text"] = text, ["logprobs"] = logprobs?.ToJson(), ["finish_reason"] = streamer.FinishReason };
            var result = Envelope(chat ? "chat.completion" : "text_completion", [choice]);
            result["usage"] = Usage();
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync(result.ToJsonString(), ct);
            return;
        }

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        string chunkType = chat ? "chat.completion.chunk" : "text_completion";
        async Task Send(JsonObject o)
        {
            await http.Response.WriteAsync("data: " + o.ToJsonString() + "\n\n", ct);
            await http.Response.Body.FlushAsync(ct);
        }
        JsonObject Chunk(string? text, string? finish, bool role = false, GeneratedToken? token = null)
        {
            JsonObject choice;
            if (chat)
            {
                var delta = new JsonObject();
                if (role) delta["role"] = "assistant";
                if (text != null) delta["content"] = text;
                choice = new JsonObject { ["index"] = 0, ["delta"] = delta, ["logprobs"] = null, ["finish_reason"] = finish };
            }
            else
            {
                JsonNode? lp = null;
                if (logprobs != null && token != null) { var one = new CompletionLogprobs(tokenizer, 0); one.Add(token); lp = one.ToJson(); }
                choice = new JsonObject { ["index"] = 0, ["text"] = text ?? "", ["logprobs"] = lp, ["finish_reason"] = finish };
            }
            return Envelope(chunkType, [choice]);
        }

        try
        {
            if (chat) await Send(Chunk("", null, role: true));
            else if (req.Echo) await Send(Chunk(req.PromptText, null));
            await foreach (var piece in streamer.ReadAsync(stream, ct))
                if (piece.Text.Length > 0 || (piece.Token != null && logprobs != null)) await Send(Chunk(piece.Text, null, token: piece.Token));
            await Send(Chunk(chat ? null : "", streamer.FinishReason));
            if (req.IncludeUsage)
            {
                var u = Envelope(chunkType, []);
                u["usage"] = Usage();
                await Send(u);
            }
            await http.Response.WriteAsync("data: [DONE]\n\n", ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            stream.Cancel();   // the client went away: the sequence leaves the batch at the next step
        }
    }
}
