using PeftSharp.Training;

namespace PeftSharp.Cli.Training;

/// <summary>
/// The output folder of one `peft train` run, held for the run's lifetime: a lock file keeps a second run out (two
/// runs would interleave their metrics and checkpoints), a folder that already holds a run is refused unless the new
/// run resumes it or overwrites it, and what killed runs left behind (half-written checkpoints and temp files) is
/// cleaned while the lock is held.
/// </summary>
public sealed class RunFolder : IDisposable
{
    public const string LockName = ".peft-train.lock";

    /// <summary>Files and folders a run writes; their presence means the folder holds a run.</summary>
    static readonly string[] RunEntries = ["checkpoints", "adapter", "model", "metrics.jsonl", "summary.json", "evaluation.json"];

    readonly FileStream _lock;

    public string Dir { get; }
    public string LockPath { get; }

    /// <summary>What <see cref="Open"/> removed: stale temp files and folders, and with overwrite the earlier run.</summary>
    public IReadOnlyList<string> Removed { get; }

    RunFolder(string dir, FileStream lockStream, IReadOnlyList<string> removed)
    {
        Dir = dir;
        LockPath = Path.Combine(dir, LockName);
        _lock = lockStream;
        Removed = removed;
    }

    public static RunFolder Open(string dir, bool resume, bool overwrite)
    {
        if (File.Exists(dir)) throw new PeftException($"--output-dir: '{dir}' is a file, not a folder");
        try { Directory.CreateDirectory(dir); }
        catch (IOException e) { throw new PeftException($"--output-dir: cannot create '{dir}' ({e.Message})"); }
        var lockStream = TakeLock(dir);
        try
        {
            var removed = new List<string>();
            var existing = RunEntries.Where(e => Path.Exists(Path.Combine(dir, e))).ToList();
            if (existing.Count > 0 && !resume)
            {
                if (!overwrite)
                    throw new PeftException($"{dir} already holds a training run ({string.Join(", ", existing)}); continue it with " +
                                            "--resume latest, or start afresh with --overwrite (deletes those files)");
                foreach (var e in existing)
                {
                    string path = Path.Combine(dir, e);
                    if (Directory.Exists(path)) Directory.Delete(path, true); else File.Delete(path);
                    removed.Add(path);
                }
            }
            removed.AddRange(Checkpoint.CleanStale(Path.Combine(dir, "checkpoints")));
            removed.AddRange(CleanTempFiles(dir));
            return new RunFolder(dir, lockStream, removed);
        }
        catch
        {
            lockStream.Dispose();
            throw;
        }
    }

    static FileStream TakeLock(string dir)
    {
        string path = Path.Combine(dir, LockName);
        try
        {
            // FileShare.None is an exclusive advisory lock (flock) on Unix and a share lock on Windows; it is released
            // by the OS when the process dies, so a killed run never leaves the folder locked.
            var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
            fs.SetLength(0);
            var pid = System.Text.Encoding.ASCII.GetBytes($"{Environment.ProcessId}\n");
            fs.Write(pid);
            fs.Flush();
            return fs;
        }
        catch (IOException)
        {
            string holder = "";
            try { holder = File.ReadAllText(path).Trim(); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw new PeftException($"{dir} is in use by another `peft train`{(holder.Length > 0 ? $" (process {holder})" : "")}; " +
                                    $"wait for it or choose another --output-dir (lock file {path})");
        }
    }

    /// <summary>AtomicFile's temp files (".name.tmp-PID-GUID") under the folder: a live writer holds the lock, so
    /// any found now belong to a killed process.</summary>
    static List<string> CleanTempFiles(string dir)
    {
        var removed = new List<string>();
        foreach (var f in Directory.EnumerateFiles(dir, ".*.tmp-*", SearchOption.AllDirectories))
        {
            File.Delete(f);
            removed.Add(f);
        }
        return removed;
    }

    public void Dispose() => _lock.Dispose();
}
