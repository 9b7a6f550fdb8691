using System.Text;
using PeftSharp.Cli;
using PeftSharp.Hub;

namespace PeftSharp.Tests.Hub;

/// <summary>`peft download` against <see cref="FakeHub"/>: the cache layout huggingface_hub writes, resumed
/// downloads, refused checksums, tokens, offline mode and redirects.</summary>
public sealed class HubDownloaderTests : IAsyncLifetime
{
    FakeHub _hub = null!;
    readonly string _cache = Path.Combine(Path.GetTempPath(), $"peft-hub-{Guid.NewGuid():N}");
    static readonly byte[] Weights = Enumerable.Range(0, 300_000).Select(i => (byte)(i * 31 + (i >> 9))).ToArray();
    static readonly Dictionary<string, byte[]> Files = new()
    {
        ["config.json"] = Encoding.UTF8.GetBytes("{\"model_type\": \"llama\"}"),
        ["model.safetensors"] = Weights,
        ["tokenizer.json"] = Encoding.UTF8.GetBytes("{\"model\": {}}"),
        ["generation_config.json"] = Encoding.UTF8.GetBytes("{}"),
        ["README.md"] = Encoding.UTF8.GetBytes("# a model card, not needed"),
        ["original/consolidated.safetensors"] = [1, 2, 3],
    };
    string _commit = "";

    public async Task InitializeAsync()
    {
        _hub = await FakeHub.StartAsync();
        _commit = _hub.AddRepo("org/tiny", Files, lfsFiles: ["model.safetensors", "original/consolidated.safetensors"]);
    }

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        if (Directory.Exists(_cache)) Directory.Delete(_cache, recursive: true);
    }

    HubEnvironment Env(string? token = null, bool offline = false) => new(_cache, _hub.Endpoint, token, offline);

    Task<DownloadResult> Download(string id, HubEnvironment? env = null, int attempts = 3, string[]? include = null)
    {
        env ??= Env();
        var http = HubClient.CreateHttpClient();
        return new HubDownloader(new HubClient(http, env), env) { Attempts = attempts }.DownloadAsync(HubModelId.Parse(id), include);
    }

    string RepoDir => Path.Combine(_cache, "models--org--tiny");

    [Fact]
    public async Task Download_writes_the_huggingface_cache_layout_and_model_ids_resolve_to_the_snapshot()
    {
        var result = await Download("org/tiny");

        Assert.Equal(["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"], result.Files.Order());
        Assert.Equal(_commit, File.ReadAllText(Path.Combine(RepoDir, "refs", "main")));
        string snapshot = Path.Combine(RepoDir, "snapshots", _commit);
        Assert.Equal(snapshot, result.SnapshotDir);
        // Snapshot entries are relative links to blobs named by their ETag: sha256 for LFS, git blob id otherwise.
        var weights = new FileInfo(Path.Combine(snapshot, "model.safetensors"));
        Assert.Equal(Path.Combine("..", "..", "blobs", FakeHub.Sha256(Weights)), weights.LinkTarget);
        Assert.Equal(Weights, File.ReadAllBytes(weights.FullName));
        Assert.Equal(Path.Combine("..", "..", "blobs", FakeHub.GitBlobId(Files["config.json"])), new FileInfo(Path.Combine(snapshot, "config.json")).LinkTarget);
        Assert.False(File.Exists(Path.Combine(snapshot, "README.md")));
        Assert.False(Directory.Exists(Path.Combine(snapshot, "original")));
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoDir, "blobs"), "*.incomplete"));

        Assert.Equal(snapshot, ModelLocator.Resolve("org/tiny", Env()));
        Assert.Equal(snapshot, ModelLocator.Resolve($"org/tiny@{_commit}", Env()));
        var missing = Assert.Throws<PeftException>(() => ModelLocator.Resolve("org/other", Env()));
        Assert.Contains("peft download org/other", missing.Message);
    }

    [Fact]
    public async Task A_second_download_finds_every_file_in_the_cache_and_fetches_nothing()
    {
        await Download("org/tiny");
        int gets = _hub.Requests.Count(r => r.Method == "GET" && r.Path.StartsWith("/lfs/"));
        var again = await Download("org/tiny");
        Assert.Equal(0, again.BytesFetched);
        Assert.Equal(gets, _hub.Requests.Count(r => r.Method == "GET" && r.Path.StartsWith("/lfs/")));
    }

    [Fact]
    public async Task An_interrupted_download_continues_with_a_range_request()
    {
        _hub.DropAfterBytes["model.safetensors"] = 100_000;
        _hub.DropsLeft = 1;
        var result = await Download("org/tiny");

        var lfs = _hub.Requests.Where(r => r.Method == "GET" && r.Path.StartsWith("/lfs/org/tiny/model.safetensors")).ToList();
        Assert.Equal(2, lfs.Count);
        Assert.Null(lfs[0].Range);
        Assert.Matches(@"^bytes=\d+-$", lfs[1].Range!);
        Assert.True(long.Parse(lfs[1].Range![6..^1]) > 0);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(result.SnapshotDir, "model.safetensors")));
        Assert.Equal(Weights.Length + Files["config.json"].Length + Files["tokenizer.json"].Length + 2, result.BytesFetched);
    }

    [Fact]
    public async Task A_download_stopped_in_one_run_is_continued_by_the_next_and_no_ref_points_at_the_half_snapshot()
    {
        _hub.DropAfterBytes["model.safetensors"] = 120_000;
        _hub.DropsLeft = 1;
        var e = await Assert.ThrowsAsync<PeftException>(() => Download("org/tiny", attempts: 1));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("run the command again", e.Message);
        string partial = Path.Combine(RepoDir, "blobs", FakeHub.Sha256(Weights) + ".incomplete");
        long kept = new FileInfo(partial).Length;
        Assert.True(kept > 0);
        Assert.False(File.Exists(Path.Combine(RepoDir, "refs", "main")));
        Assert.Throws<PeftException>(() => ModelLocator.Resolve("org/tiny", Env()));

        var result = await Download("org/tiny", attempts: 1);
        Assert.Equal($"bytes={kept}-", _hub.Requests.Last(r => r.Path.StartsWith("/lfs/org/tiny/model.safetensors")).Range);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(result.SnapshotDir, "model.safetensors")));
        Assert.False(File.Exists(partial));
    }

    [Theory]
    [InlineData("model.safetensors")]   // LFS: sha256 from X-Linked-Etag
    [InlineData("config.json")]         // regular: git blob id from ETag
    public async Task Wrong_bytes_are_refused_and_leave_nothing_behind(string file)
    {
        _hub.Corrupt.Add(file);
        var e = await Assert.ThrowsAsync<PeftException>(() => Download("org/tiny"));
        Assert.Contains($"{file}: checksum mismatch", e.Message);
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoDir, "blobs"), "*.incomplete"));
        Assert.False(File.Exists(Path.Combine(RepoDir, "snapshots", _commit, file)));
        Assert.False(File.Exists(Path.Combine(RepoDir, "refs", "main")));
    }

    [Fact]
    public async Task A_gated_model_needs_the_token_which_is_not_sent_to_the_storage_host()
    {
        _hub.RequiredToken = "hf_secret";
        var e = await Assert.ThrowsAsync<PeftException>(() => Download("org/tiny"));
        Assert.Contains("HF_TOKEN", e.Message);

        await Download("org/tiny", Env(token: "hf_secret"));
        Assert.All(_hub.Requests.Where(r => r.Path.StartsWith("/api/") || r.Path.Contains("/resolve/")).Skip(1),
            r => Assert.Equal("Bearer hf_secret", r.Authorization));
        Assert.All(_hub.Requests.Where(r => r.Path.StartsWith("/lfs/")), r => Assert.Null(r.Authorization));
    }

    [Fact]
    public async Task Offline_mode_uses_the_cache_and_never_touches_the_network()
    {
        var e = await Assert.ThrowsAsync<PeftException>(() => Download("org/tiny", Env(offline: true)));
        Assert.Contains("HF_HUB_OFFLINE", e.Message);
        Assert.Empty(_hub.Requests);

        await Download("org/tiny");
        int before = _hub.Requests.Count;
        var cached = await Download("org/tiny", Env(offline: true));
        Assert.True(cached.Offline);
        Assert.Equal(Path.Combine(RepoDir, "snapshots", _commit), cached.SnapshotDir);
        Assert.Equal(before, _hub.Requests.Count);
    }

    [Fact]
    public async Task A_renamed_repository_redirect_is_followed_and_include_globs_choose_files()
    {
        _hub.Renamed["old/tiny"] = "org/tiny";
        _hub.AddRepo("old/tiny", Files);   // the API still knows the old name; resolve URLs redirect
        var result = await Download("old/tiny", include: ["*.json"]);
        Assert.Equal(["config.json", "generation_config.json", "tokenizer.json"], result.Files.Order());
        Assert.Contains(_hub.Requests, r => r.Path.StartsWith("/org/tiny/resolve/"));
        Assert.Equal(Files["config.json"], File.ReadAllBytes(Path.Combine(result.SnapshotDir, "config.json")));
    }

    [Fact]
    public async Task Unknown_models_and_unmatched_patterns_are_clear_errors()
    {
        var e = await Assert.ThrowsAsync<PeftException>(() => Download("org/nope"));
        Assert.Contains("no such model or revision", e.Message);
        e = await Assert.ThrowsAsync<PeftException>(() => Download("org/tiny", include: ["*.gguf"]));
        Assert.Contains("no file matches *.gguf", e.Message);
    }
}
