namespace PeftSharp.Hub;

/// <summary>Progress of one file: bytes so far of its size (null when unknown); FromCache when it was already there.</summary>
internal sealed record DownloadProgress(string File, long Done, long? Size, bool FromCache, bool Finished);

/// <summary>The snapshot folder a download produced (or found), its commit, and what was fetched.</summary>
internal sealed record DownloadResult(string SnapshotDir, string Commit, IReadOnlyList<string> Files, long BytesFetched, bool Offline);

/// <summary>
/// Fetches a model's files from the Hub into the Hugging Face cache layout (<see cref="HubCache"/>), as
/// huggingface_hub's snapshot_download does: each file goes to <c>blobs/&lt;etag&gt;.incomplete</c>, is continued
/// with a Range request after an interruption, is checked against its ETag (sha256 for LFS files, git blob id
/// otherwise) and only then renamed to <c>blobs/&lt;etag&gt;</c> and linked from the snapshot. The ref is written last,
/// so an interrupted download never makes a half snapshot look complete. With HF_HUB_OFFLINE set it only looks in
/// the cache.
/// </summary>
internal sealed class HubDownloader(HubClient client, HubEnvironment env)
{
    /// <summary>What a model needs, when no --include is given: config, weights and their index, tokenizer files,
    /// chat template, generation config (and adapter files, for an adapter repository). Top-level files only.</summary>
    public static readonly string[] DefaultPatterns =
    [
        "config.json", "generation_config.json", "*.safetensors", "*.safetensors.index.json",
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "chat_template.json",
        "adapter_config.json",
    ];

    /// <summary>Attempts per file; each continues where the previous one stopped.</summary>
    public int Attempts { get; init; } = 3;

    readonly HubCache _cache = new(env.CacheDir);

    public async Task<DownloadResult> DownloadAsync(HubModelId id, IReadOnlyList<string>? include = null,
        IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        if (env.Offline)
        {
            string dir = _cache.TryResolve(id) ?? throw new PeftException(
                $"{id}: HF_HUB_OFFLINE is set and the model is not in the cache at {_cache.RepoDir(id)}; unset HF_HUB_OFFLINE to download it");
            return new DownloadResult(dir, _cache.CommitOf(id)!, [], 0, Offline: true);
        }
        var info = await client.GetRevisionAsync(id, ct);
        var files = Select(info.Files, include);
        if (files.Count == 0)
            throw new PeftException($"{id}: no file matches {string.Join(" ", include ?? DefaultPatterns)} (the repository has: {string.Join(", ", info.Files.Take(20))})");
        long fetched = 0;
        foreach (var file in files)
        {
            var meta = await client.HeadAsync(id, info.Commit, file, ct);
            fetched += await FetchBlobAsync(id, meta, progress, ct);
            _cache.LinkSnapshotFile(id, info.Commit, file, meta.ETag);
        }
        _cache.WriteRef(id, info.Commit);
        return new DownloadResult(_cache.SnapshotDir(id, info.Commit), info.Commit, files, fetched, Offline: false);
    }

    /// <summary>The repository's files that match the patterns (default: <see cref="DefaultPatterns"/>, top level).</summary>
    public static List<string> Select(IReadOnlyList<string> files, IReadOnlyList<string>? include)
    {
        if (include is { Count: > 0 }) return files.Where(f => include.Any(p => FileGlob.Matches(f, p))).ToList();
        return files.Where(f => !f.Contains('/') && DefaultPatterns.Any(p => FileGlob.Matches(f, p))).ToList();
    }

    async Task<long> FetchBlobAsync(HubModelId id, HubFileInfo meta, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        if (!FileChecksum.IsVerifiable(meta.ETag))
            throw new PeftException($"{id}: {meta.File}: the Hub's ETag '{meta.ETag}' is neither a sha256 nor a git blob id, so the file cannot be verified");
        string blob = _cache.BlobPath(id, meta.ETag);
        if (File.Exists(blob) && (meta.Size == null || new FileInfo(blob).Length == meta.Size))
        {
            progress?.Report(new DownloadProgress(meta.File, meta.Size ?? new FileInfo(blob).Length, meta.Size, FromCache: true, Finished: true));
            return 0;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        string partial = blob + ".incomplete";
        long start = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await client.FetchAsync(meta.DownloadUrl, partial,
                    done => progress?.Report(new DownloadProgress(meta.File, done, meta.Size, false, false)), ct);
                break;
            }
            catch (Exception e) when (e is HubNetworkException or IOException && !ct.IsCancellationRequested)
            {
                if (attempt >= Attempts)
                    throw new PeftException($"{id}: {meta.File}: download interrupted after {attempt} attempts ({e.Message}); " +
                                            $"run the command again to continue from {(File.Exists(partial) ? new FileInfo(partial).Length : 0):N0} bytes", e);
            }
        }
        long size = new FileInfo(partial).Length;
        string actual = FileChecksum.Compute(partial, meta.ETag);
        if (actual != meta.ETag || (meta.Size is long expected && expected != size))
        {
            File.Delete(partial);
            throw new PeftException($"{id}: {meta.File}: checksum mismatch (expected {meta.ETag}{(meta.Size != null ? $", {meta.Size} bytes" : "")}; " +
                                    $"got {actual}, {size} bytes); the download was discarded");
        }
        File.Move(partial, blob, overwrite: true);
        progress?.Report(new DownloadProgress(meta.File, size, meta.Size ?? size, false, Finished: true));
        return size - start;
    }
}
