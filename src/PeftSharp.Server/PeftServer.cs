using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PeftSharp.Server.Engine;
using PeftSharp.Server.Http;

namespace PeftSharp.Server;

/// <summary>How the HTTP server listens and what it accepts.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind (loopback unless told otherwise).</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>Port (0: any free port; see <see cref="PeftServer.Port"/>).</summary>
    public int Port { get; init; } = 8000;
    /// <summary>When set, every /v1 request must carry <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Largest request body accepted (bytes); beyond it: 413.</summary>
    public long MaxBodyBytes { get; init; } = 1 << 20;
    /// <summary>The id the base model answers to in <c>model</c>.</summary>
    public string BaseModelName { get; init; } = "base";
}

/// <summary>
/// The OpenAI-compatible HTTP server (Kestrel) over a <see cref="ServeEngine"/>: bad requests get OpenAI's error body
/// with the right status, and the server keeps serving.
/// </summary>
public sealed class PeftServer : IAsyncDisposable
{
    readonly WebApplication _app;

    PeftServer(WebApplication app) => _app = app;

    /// <summary>Builds and starts the server; <see cref="Port"/> is the port it listens on.</summary>
    public static async Task<PeftServer> StartAsync(ServeEngine engine, ServerOptions options, bool quiet = true)
    {
        if (!IPAddress.TryParse(options.Host, out var address) && options.Host != "localhost")
            throw new PeftException($"--host: '{options.Host}' is not an IP address");
        var builder = WebApplication.CreateSlimBuilder();
        if (quiet) builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            if (address != null) k.Listen(address, options.Port);
            else k.ListenLocalhost(options.Port);
        });
        var app = builder.Build();
        app.Use(async (http, next) =>
        {
            try
            {
                if (options.ApiKey != null && http.Request.Path.StartsWithSegments("/v1")
                    && http.Request.Headers.Authorization.ToString() != "Bearer " + options.ApiKey)
                    throw new ApiError(401, "invalid or missing API key (Authorization: Bearer …)", "invalid_request_error", code: "invalid_api_key");
                await next(http);
                if (http.Response.StatusCode == 404 && !http.Response.HasStarted)
                    await new ApiError(404, $"no route {http.Request.Method} {http.Request.Path}", code: "not_found").WriteAsync(http);
                else if (http.Response.StatusCode == 405 && !http.Response.HasStarted)
                    await new ApiError(405, $"method {http.Request.Method} is not allowed on {http.Request.Path}").WriteAsync(http);
            }
            catch (Exception e) when (!http.Response.HasStarted && !(e is OperationCanceledException && http.RequestAborted.IsCancellationRequested))
            {
                await Map(e).WriteAsync(http);
            }
            catch (Exception) when (http.Response.HasStarted || http.RequestAborted.IsCancellationRequested)
            {
                // Mid-stream failure or a client that left: nothing more can be said on this response.
            }
        });
        OpenAiEndpoints.Map(app, engine, options.BaseModelName);
        AdapterEndpoints.Map(app, engine, options.BaseModelName);
        await app.StartAsync();
        var server = new PeftServer(app);
        return server;
    }

    static ApiError Map(Exception e) => e switch
    {
        ApiError a => a,
        BadHttpRequestException { StatusCode: 413 } => new ApiError(413, "the request body is too large", code: "request_too_large"),
        BadHttpRequestException b => new ApiError(b.StatusCode, b.Message),
        UnknownModelException u => new ApiError(404, u.Message, param: "model", code: "model_not_found"),
        ContextLengthException c => ApiError.BadRequest(c.Message, "prompt", "context_length_exceeded"),
        EngineBusyException b => new ApiError(429, b.Message, "rate_limit_error", code: "server_busy"),
        PeftException p => ApiError.BadRequest(p.Message),
        ObjectDisposedException => new ApiError(503, "the server is shutting down", "server_error"),
        _ => new ApiError(500, $"internal error: {e.Message}", "server_error"),
    };

    /// <summary>The port Kestrel listens on.</summary>
    public int Port => new Uri(_app.Urls.First()).Port;

    /// <summary>The base address, e.g. http://127.0.0.1:8000/.</summary>
    public string Url => _app.Urls.First();

    public Task WaitForShutdownAsync(CancellationToken ct = default) => _app.WaitForShutdownAsync(ct);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
