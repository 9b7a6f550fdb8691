using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace PeftSharp.Tests.Hub;

/// <summary>
/// A Hugging Face Hub on 127.0.0.1 (Kestrel) with the Hub's URL layout and headers: <c>/api/models/{id}/revision/{rev}</c>,
/// HEAD/GET <c>/{id}/resolve/{rev}/{file}</c> with X-Repo-Commit and ETag (git blob id) for regular files, and for
/// LFS files a 302 to a storage URL on another host name (localhost) carrying X-Linked-Etag (sha256) and
/// X-Linked-Size. Storage honours Range. Faults are switched on per test: a dropped connection, wrong bytes, a
/// required token, a renamed repository.
/// </summary>
public sealed class FakeHub : IAsyncDisposable
{
    public sealed record Request(string Method, string Path, string? Range, string? Authorization);

    readonly WebApplication _app;
    readonly Dictionary<string, (string Commit, Dictionary<string, byte[]> Files)> _repos = new();
    readonly HashSet<string> _lfs = [];
    readonly ConcurrentQueue<Request> _requests = new();
    int _port;

    public string Endpoint => $"http://127.0.0.1:{_port}";
    public IReadOnlyList<Request> Requests => _requests.ToArray();

    /// <summary>Storage GETs of this file send only this many bytes, then drop the connection (counted down per GET).</summary>
    public ConcurrentDictionary<string, int> DropAfterBytes { get; } = new();
    public int DropsLeft { get; set; }
    /// <summary>Files whose storage serves different bytes than their ETag says.</summary>
    public HashSet<string> Corrupt { get; } = [];
    /// <summary>When set, the API and resolve URLs answer 401 without "Authorization: Bearer {RequiredToken}".</summary>
    public string? RequiredToken { get; set; }
    /// <summary>Old repository name → new: resolve URLs under the old name answer 307 to the new one.</summary>
    public Dictionary<string, string> Renamed { get; } = new();

    FakeHub(WebApplication app) => _app = app;

    public static async Task<FakeHub> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var hub = new FakeHub(builder.Build());
        hub.Map();
        await hub._app.StartAsync();
        var address = hub._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        hub._port = new Uri(address).Port;
        return hub;
    }

    public string AddRepo(string repo, Dictionary<string, byte[]> files, IEnumerable<string>? lfsFiles = null)
    {
        // The commit is a hash of the content, so a renamed repository (same content) has the same commit.
        string commit = Convert.ToHexStringLower(SHA1.HashData(files.OrderBy(f => f.Key).SelectMany(f => Encoding.UTF8.GetBytes(f.Key).Concat(f.Value)).ToArray()));
        _repos[repo] = (commit, files);
        foreach (var f in lfsFiles ?? []) _lfs.Add(repo + "/" + f);
        return commit;
    }

    public static string Sha256(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));
    public static string GitBlobId(byte[] b) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {b.Length}\0"), .. b]));

    void Map()
    {
        _app.Use(async (ctx, next) =>
        {
            _requests.Enqueue(new Request(ctx.Request.Method, ctx.Request.Path + ctx.Request.QueryString,
                ctx.Request.Headers.Range.FirstOrDefault(), ctx.Request.Headers.Authorization.FirstOrDefault()));
            await next();
        });
        _app.MapGet("/api/models/{org}/{name}/revision/{rev}", (HttpContext ctx, string org, string name, string rev) =>
        {
            if (!Authorized(ctx)) return Results.StatusCode(401);
            if (!_repos.TryGetValue($"{org}/{name}", out var r) || (rev != "main" && rev != r.Commit)) return Results.NotFound();
            return Results.Text(JsonSerializer.Serialize(new { id = $"{org}/{name}", sha = r.Commit, siblings = r.Files.Keys.Select(f => new { rfilename = f }) }),
                "application/json");
        });
        _app.MapMethods("/{org}/{name}/resolve/{rev}/{**file}", ["GET", "HEAD"], (HttpContext ctx, string org, string name, string rev, string file) =>
        {
            string repo = $"{org}/{name}";
            if (Renamed.TryGetValue(repo, out var renamed))
            {
                ctx.Response.StatusCode = 307;
                ctx.Response.Headers.Location = $"/{renamed}/resolve/{rev}/{file}";
                return Task.CompletedTask;
            }
            if (!Authorized(ctx)) { ctx.Response.StatusCode = 401; return Task.CompletedTask; }
            if (!_repos.TryGetValue(repo, out var r) || (rev != "main" && rev != r.Commit) || !r.Files.TryGetValue(file, out var bytes))
            {
                ctx.Response.StatusCode = 404;
                return Task.CompletedTask;
            }
            ctx.Response.Headers["X-Repo-Commit"] = r.Commit;
            if (_lfs.Contains(repo + "/" + file))
            {
                string sha = Sha256(bytes);
                ctx.Response.StatusCode = 302;
                ctx.Response.Headers["X-Linked-Etag"] = $"\"{sha}\"";
                ctx.Response.Headers["X-Linked-Size"] = bytes.Length.ToString();
                ctx.Response.Headers.ETag = $"\"{sha}\"";
                // Another host name for the same server, as the Hub's storage is another host: no token goes there.
                ctx.Response.Headers.Location = $"http://localhost:{_port}/lfs/{repo}/{file}";
                return Task.CompletedTask;
            }
            ctx.Response.Headers.ETag = $"\"{GitBlobId(bytes)}\"";
            return Serve(ctx, repo, file, bytes);
        });
        _app.MapGet("/lfs/{org}/{name}/{**file}", (HttpContext ctx, string org, string name, string file) =>
            _repos.TryGetValue($"{org}/{name}", out var r) && r.Files.TryGetValue(file, out var bytes)
                ? Serve(ctx, $"{org}/{name}", file, bytes) : Task.FromResult(ctx.Response.StatusCode = 404));
    }

    bool Authorized(HttpContext ctx) => RequiredToken == null || ctx.Request.Headers.Authorization == $"Bearer {RequiredToken}";

    async Task Serve(HttpContext ctx, string repo, string file, byte[] bytes)
    {
        if (Corrupt.Contains(file)) { bytes = (byte[])bytes.Clone(); bytes[^1] ^= 0xFF; }
        long from = 0;
        if (ctx.Request.Headers.Range.FirstOrDefault() is { } range && range.StartsWith("bytes=") && range.EndsWith('-'))
        {
            from = long.Parse(range[6..^1]);
            if (from >= bytes.Length) { ctx.Response.StatusCode = 416; return; }
            ctx.Response.StatusCode = 206;
            ctx.Response.Headers.ContentRange = $"bytes {from}-{bytes.Length - 1}/{bytes.Length}";
        }
        ctx.Response.ContentLength = bytes.Length - from;
        if (HttpMethods.IsHead(ctx.Request.Method)) return;
        if (DropsLeft > 0 && DropAfterBytes.TryGetValue(file, out int drop))
        {
            DropsLeft--;
            await ctx.Response.Body.WriteAsync(bytes.AsMemory((int)from, Math.Min(drop, bytes.Length - (int)from)));
            await ctx.Response.Body.FlushAsync();
            ctx.Abort();
            return;
        }
        await ctx.Response.Body.WriteAsync(bytes.AsMemory((int)from));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
