using System.Text.RegularExpressions;
using PeftSharp.IO;

namespace PeftSharp.Hub;

/// <summary>
/// The Hugging Face cache layout as huggingface_hub writes it, so models downloaded by transformers or
/// huggingface-cli are used in place: <c>models--org--name/refs/&lt;rev&gt;</c> holds a commit hash,
/// <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> links to <c>blobs/&lt;etag&gt;</c>.
/// </summary>
internal sealed partial class HubCache(string root)
{
    public string Root { get; } = root;

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    public string RepoDir(HubModelId id) => Path.Combine(Root, id.CacheFolderName);
    public string BlobPath(HubModelId id, string etag) => Path.Combine(RepoDir(id), "blobs", etag);
    public string SnapshotDir(HubModelId id, string commit) => Path.Combine(RepoDir(id), "snapshots", commit);
    public string RefPath(HubModelId id) => Path.Combine(RepoDir(id), "refs", id.Revision);

    /// <summary>The commit a revision points at in the cache (the ref file, or the revision itself when it is a
    /// commit hash); null when the cache does not know it.</summary>
    public string? CommitOf(HubModelId id)
    {
        if (id.IsCommit) return id.Revision;
        string refPath = RefPath(id);
        if (!File.Exists(refPath)) return null;
        string commit = File.ReadAllText(refPath).Trim();
        return CommitPattern().IsMatch(commit) ? commit : throw new PeftException($"{refPath}: expected a 40-hex commit hash, got '{commit}'");
    }

    /// <summary>The snapshot folder of a model id if it is in the cache with a config.json (a model) or an
    /// adapter_config.json (a PEFT adapter), else null.</summary>
    public string? TryResolve(HubModelId id)
    {
        string? commit = CommitOf(id);
        if (commit == null) return null;
        string dir = SnapshotDir(id, commit);
        return File.Exists(Path.Combine(dir, "config.json")) || File.Exists(Path.Combine(dir, "adapter_config.json")) ? dir : null;
    }

    /// <summary>Records that <paramref name="id"/>'s revision is <paramref name="commit"/> (refs/&lt;rev&gt;).</summary>
    public void WriteRef(HubModelId id, string commit)
    {
        if (id.IsCommit) return;
        string path = RefPath(id);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        AtomicFile.WriteAllText(path, commit);
    }

    /// <summary>Puts <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> in place as a relative symbolic link to the blob
    /// (a copy where links cannot be made), replacing what was there in one rename.</summary>
    public void LinkSnapshotFile(HubModelId id, string commit, string file, string etag)
    {
        string target = Path.Combine(SnapshotDir(id, commit), file.Replace('/', Path.DirectorySeparatorChar));
        string dir = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(dir);
        string blob = BlobPath(id, etag);
        string temp = Path.Combine(dir, $".{Path.GetFileName(target)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            try { File.CreateSymbolicLink(temp, Path.GetRelativePath(dir, blob)); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException) { File.Copy(blob, temp); }
            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }
}
