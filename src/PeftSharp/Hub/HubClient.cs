using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace PeftSharp.Hub;

/// <summary>What <c>/api/models/{id}/revision/{rev}</c> says about a revision: its commit and its files.</summary>
internal sealed record HubRepoInfo(string Commit, IReadOnlyList<string> Files);

/// <summary>What a HEAD of <c>/{id}/resolve/{rev}/{file}</c> says: the commit, the ETag (sha256 for LFS files,
/// git blob id otherwise), the size when known, and where the bytes are (after an LFS redirect).</summary>
internal sealed record HubFileInfo(string File, string Commit, string ETag, long? Size, Uri DownloadUrl);

/// <summary>
/// The Hub's HTTP API, as huggingface_hub uses it: redirects are followed by hand so the LFS headers of the redirect
/// response (X-Linked-Etag, X-Linked-Size) are seen, and the token is sent only to the Hub itself, never to the
/// storage host it redirects to.
/// </summary>
internal sealed class HubClient(HttpClient http, HubEnvironment env)
{
    const int MaxRedirects = 10;
    readonly Uri _endpoint = new(env.Endpoint + "/");

    /// <summary>An HttpClient suited to this class: no automatic redirects, no overall timeout (large files).</summary>
    public static HttpClient CreateHttpClient() => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = TimeSpan.FromSeconds(30),
    }) { Timeout = Timeout.InfiniteTimeSpan };

    static string Escape(string path) => string.Join('/', path.Split('/').Select(Uri.EscapeDataString));

    public async Task<HubRepoInfo> GetRevisionAsync(HubModelId id, CancellationToken ct = default)
    {
        var url = new Uri(_endpoint, $"api/models/{Escape(id.Repo)}/revision/{Uri.EscapeDataString(id.Revision)}");
        using var resp = await SendAsync(HttpMethod.Get, url, null, ct);
        Check(resp, id, null);
        string body = await resp.Content.ReadAsStringAsync(ct);
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            string commit = root.GetProperty("sha").GetString() ?? throw new KeyNotFoundException("sha");
            var files = root.TryGetProperty("siblings", out var s)
                ? s.EnumerateArray().Select(e => e.GetProperty("rfilename").GetString()!).ToList()
                : [];
            return new HubRepoInfo(commit, files);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new PeftException($"{url}: unexpected answer from the Hub (expected JSON with \"sha\" and \"siblings\"): {e.Message}");
        }
    }

    public async Task<HubFileInfo> HeadAsync(HubModelId id, string revision, string file, CancellationToken ct = default)
    {
        var url = new Uri(_endpoint, $"{Escape(id.Repo)}/resolve/{Uri.EscapeDataString(revision)}/{Escape(file)}");
        for (int hop = 0; hop <= MaxRedirects; hop++)
        {
            using var resp = await SendAsync(HttpMethod.Head, url, null, ct);
            int code = (int)resp.StatusCode;
            if (code is >= 300 and < 400 && resp.Headers.Location is { } location)
            {
                var next = new Uri(url, location);
                // An LFS file answers with a redirect to its storage: the file's metadata is on this response.
                if (Header(resp, "X-Linked-Etag") != null || next.Host != _endpoint.Host)
                    return Info(resp, file, next);
                url = next;   // a renamed repository: follow within the Hub
                continue;
            }
            Check(resp, id, file);
            return Info(resp, file, url);
        }
        throw new PeftException($"{id}: {file}: more than {MaxRedirects} redirects");
    }

    HubFileInfo Info(HttpResponseMessage resp, string file, Uri downloadUrl)
    {
        string etag = NormalizeETag(Header(resp, "X-Linked-Etag") ?? resp.Headers.ETag?.Tag ?? Header(resp, "ETag"))
            ?? throw new PeftException($"{file}: the Hub sent no ETag, so the download cannot be verified");
        string commit = Header(resp, "X-Repo-Commit") ?? throw new PeftException($"{file}: the Hub sent no X-Repo-Commit header");
        long? size = long.TryParse(Header(resp, "X-Linked-Size"), out var s) ? s : resp.Content.Headers.ContentLength;
        return new HubFileInfo(file, commit, etag, size, downloadUrl);
    }

    /// <summary>Fetches <paramref name="url"/> into <paramref name="partialPath"/>, continuing a partial file with a
    /// Range request; <paramref name="onBytes"/> receives the running total.</summary>
    public async Task FetchAsync(Uri url, string partialPath, Action<long> onBytes, CancellationToken ct = default)
    {
        long have = File.Exists(partialPath) ? new FileInfo(partialPath).Length : 0;
        for (int hop = 0; hop <= MaxRedirects; hop++)
        {
            using var resp = await SendAsync(HttpMethod.Get, url, have > 0 ? new RangeHeaderValue(have, null) : null, ct);
            int code = (int)resp.StatusCode;
            if (code is >= 300 and < 400 && resp.Headers.Location is { } location) { url = new Uri(url, location); continue; }
            if (resp.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
            {
                // The partial file is already complete (or longer than the file): verification decides.
                onBytes(have);
                return;
            }
            if (!resp.IsSuccessStatusCode)
                throw code >= 500 ? new HubNetworkException($"{url}: HTTP {code} {resp.ReasonPhrase}") : new PeftException($"{url}: HTTP {code} {resp.ReasonPhrase}");
            bool append = resp.StatusCode == HttpStatusCode.PartialContent;
            if (!append) have = 0;   // the server ignored the range: start over
            await using var body = await resp.Content.ReadAsStreamAsync(ct);
            await using var fs = new FileStream(partialPath, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
            var buf = new byte[1 << 16];
            for (int n; (n = await body.ReadAsync(buf, ct)) > 0;)
            {
                await fs.WriteAsync(buf.AsMemory(0, n), ct);
                have += n;
                onBytes(have);
            }
            return;
        }
        throw new PeftException($"{url}: more than {MaxRedirects} redirects");
    }

    async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, RangeHeaderValue? range, CancellationToken ct)
    {
        using var req = new HttpRequestMessage(method, url);
        req.Headers.UserAgent.ParseAdd("PeftSharp/1.0");
        if (env.Token != null && url.Host == _endpoint.Host && url.Port == _endpoint.Port)
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", env.Token);
        if (range != null) req.Headers.Range = range;
        try { return await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct); }
        catch (HttpRequestException e) { throw new HubNetworkException($"{url}: {e.Message}", e); }
    }

    void Check(HttpResponseMessage resp, HubModelId id, string? file)
    {
        if (resp.IsSuccessStatusCode) return;
        string what = file == null ? $"{id}" : $"{id}: {file}";
        throw resp.StatusCode switch
        {
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new PeftException(
                $"{what}: the Hub refused access (HTTP {(int)resp.StatusCode}); a gated or private model needs HF_TOKEN set to a token that has been granted access"),
            HttpStatusCode.NotFound => new PeftException(file == null
                ? $"{what}: no such model or revision on {env.Endpoint}"
                : $"{what}: no such file at this revision"),
            _ => new HubNetworkException($"{what}: HTTP {(int)resp.StatusCode} {resp.ReasonPhrase} from {env.Endpoint}"),
        };
    }

    static string? Header(HttpResponseMessage resp, string name) =>
        resp.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault()
        : resp.Content.Headers.TryGetValues(name, out var c) ? c.FirstOrDefault() : null;

    /// <summary>Strips a weak marker and quotes: <c>W/"abc"</c> → <c>abc</c>.</summary>
    public static string? NormalizeETag(string? etag)
    {
        if (string.IsNullOrWhiteSpace(etag)) return null;
        etag = etag.Trim();
        if (etag.StartsWith("W/")) etag = etag[2..];
        return etag.Trim('"');
    }
}

/// <summary>A transient network failure (connection refused or dropped, a server error): a retry may succeed.</summary>
internal sealed class HubNetworkException(string message, Exception? inner = null) : PeftException(message, inner!);
