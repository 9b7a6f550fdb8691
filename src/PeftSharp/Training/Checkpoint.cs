using System.Text.Json;
using System.Text.Json.Nodes;
using PeftSharp.IO;
using PeftSharp.Nn;
using PeftSharp.Optim;
using PeftSharp.Tensors;

namespace PeftSharp.Training;

/// <summary>
/// A resumable training checkpoint folder: trainable parameters (float32, exact), optimizer state, data position and
/// step (trainer_state.json), plus the adapter in PEFT's format for use as is. Written to "name.tmp" then renamed, so
/// a crash never leaves a half checkpoint under the real name. A completion marker is the last file written, and only
/// folders holding it are listed; pruning renames a folder away before deleting it, so a kill during either never
/// leaves a folder that looks like a checkpoint but lacks its tensors.
/// </summary>
internal static class Checkpoint
{
    public const string StateFile = "trainer_state.json";
    public const string ParamsFile = "trainable.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";
    /// <summary>Written last: a folder without it is not (yet, or any more) a checkpoint.</summary>
    public const string CompleteMarker = "checkpoint_complete";
    const string DeletingSuffix = ".deleting";

    /// <summary>trainer_state.json: where a run stands.</summary>
    /// <param name="Step">Optimizer steps done.</param>
    /// <param name="Epoch">Data epoch of the next batch (global batches of GlobalBatchSize sequences, all ranks together).</param>
    /// <param name="Batch">Index of the next global batch within the epoch.</param>
    /// <param name="Method">Training method name.</param>
    /// <param name="Seed">Run seed.</param>
    /// <param name="Threads">Compute threads of the run that wrote it.</param>
    /// <param name="Loss">Training loss of the step that was checkpointed (null in checkpoints older than this field).</param>
    /// <param name="Ranks">How many data-parallel ranks wrote it.</param>
    /// <param name="GlobalBatchSize">Sequences per global batch (0: not recorded, a checkpoint from before data parallelism).</param>
    public sealed record State(int Step, int Epoch, int Batch, string Method, int Seed, int Threads, double? Loss = null, int Ranks = 1, int GlobalBatchSize = 0);

    public static string Save(string checkpointsDir, State state, IReadOnlyList<Parameter> parameters, Optimizer optimizer,
        Action<string> writeAdapter, int keepLast)
    {
        Directory.CreateDirectory(checkpointsDir);
        string name = $"step-{state.Step:D6}";
        string final = Path.Combine(checkpointsDir, name), tmp = final + ".tmp";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        try
        {
            Directory.CreateDirectory(tmp);
            SafetensorsWriter.Write(Path.Combine(tmp, ParamsFile), parameters.Select(p => (p.Name, p.Value)));
            var opt = optimizer.SaveState();
            try { SafetensorsWriter.Write(Path.Combine(tmp, OptimizerFile), opt.Select(kv => (kv.Key, kv.Value))); }
            finally { foreach (var t in opt.Values) t.Dispose(); }
            writeAdapter(tmp);
            AtomicFile.WriteAllText(Path.Combine(tmp, StateFile), SnakeCaseJson.Serialize(state));
            AtomicFile.WriteAllText(Path.Combine(tmp, CompleteMarker), $"step {state.Step}\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PeftException)
        {
            // A full disk or a vanished folder: free what the half checkpoint took, keep the older ones.
            try { if (Directory.Exists(tmp)) Directory.Delete(tmp, true); } catch (IOException) { }
            throw new PeftException($"{final}: the checkpoint could not be written ({e.Message}); earlier checkpoints are intact", e);
        }
        if (Directory.Exists(final)) Remove(final);
        Directory.Move(tmp, final);
        Prune(checkpointsDir, keepLast);
        return final;
    }

    static void Prune(string dir, int keepLast)
    {
        if (keepLast <= 0) return;
        foreach (var old in List(dir).SkipLast(keepLast)) Remove(old);
    }

    /// <summary>Renames the folder out of the "step-N" namespace (one atomic step), then deletes it.</summary>
    static void Remove(string checkpoint)
    {
        string doomed = checkpoint + DeletingSuffix;
        if (Directory.Exists(doomed)) Directory.Delete(doomed, true);
        Directory.Move(checkpoint, doomed);
        Directory.Delete(doomed, true);
    }

    /// <summary>Complete checkpoints, oldest first: "step-N" folders holding the completion marker (or, written
    /// before the marker existed, all three of state, parameters and optimizer state).</summary>
    public static IReadOnlyList<string> List(string checkpointsDir) =>
        !Directory.Exists(checkpointsDir) ? [] :
        Directory.GetDirectories(checkpointsDir, "step-*")
            .Where(d => IsStepName(Path.GetFileName(d)) && IsComplete(d))
            .OrderBy(d => d, StringComparer.Ordinal).ToList();

    static bool IsStepName(string name) => name.Length > 5 && name[5..].All(char.IsAsciiDigit);

    static bool IsComplete(string d) =>
        File.Exists(Path.Combine(d, CompleteMarker)) ||
        (File.Exists(Path.Combine(d, StateFile)) && File.Exists(Path.Combine(d, ParamsFile)) && File.Exists(Path.Combine(d, OptimizerFile)));

    /// <summary>The saved state of a checkpoint folder, without loading its tensors.</summary>
    public static State ReadState(string dir)
    {
        var statePath = Path.Combine(dir, StateFile);
        if (!File.Exists(statePath)) throw new PeftException($"{dir}: not a checkpoint (no {StateFile})");
        try { return SnakeCaseJson.Deserialize<State>(File.ReadAllText(statePath)) ?? throw new PeftException($"{statePath}: empty"); }
        catch (JsonException e) { throw new PeftException($"{statePath}: invalid JSON ({e.Message})"); }
    }

    /// <summary>Deletes what killed runs leave in a checkpoints folder: "step-N.tmp" (a save in progress) and
    /// "step-N.deleting" (a prune in progress). Call it only while holding the run folder's lock.</summary>
    public static IReadOnlyList<string> CleanStale(string checkpointsDir)
    {
        if (!Directory.Exists(checkpointsDir)) return [];
        var removed = new List<string>();
        foreach (var d in Directory.GetDirectories(checkpointsDir, "step-*"))
            if (d.EndsWith(".tmp", StringComparison.Ordinal) || d.EndsWith(DeletingSuffix, StringComparison.Ordinal))
            {
                Directory.Delete(d, true);
                removed.Add(d);
            }
        return removed;
    }

    /// <summary>Restores parameters and optimizer state in place; returns the saved state.</summary>
    public static State Load(string dir, IReadOnlyList<Parameter> parameters, Optimizer optimizer)
    {
        var state = ReadState(dir);

        using (var st = SafetensorsFile.Open(Path.Combine(dir, ParamsFile)))
        {
            foreach (var p in parameters)
            {
                if (!st.Contains(p.Name))
                    throw new PeftException($"{dir}/{ParamsFile}: no tensor '{p.Name}'; the checkpoint was made with a different method or adapter config");
                using var t = st.Get(p.Name);
                if (t.DType != DType.F32 || !t.Shape.AsSpan().SequenceEqual(p.Value.Shape))
                    throw new PeftException($"{dir}/{ParamsFile}: '{p.Name}' is {t.DType} {t.ShapeString}, expected F32 {p.Value.ShapeString}");
                t.Floats.CopyTo(p.Value.Floats);
            }
            if (st.Entries.Count != parameters.Count)
                throw new PeftException($"{dir}/{ParamsFile}: holds {st.Entries.Count} tensors, the run trains {parameters.Count}");
        }
        using (var st = SafetensorsFile.Open(Path.Combine(dir, OptimizerFile)))
        {
            var dict = st.Entries.ToDictionary(e => e.Name, e => st.Get(e.Name));
            optimizer.LoadState(dict, Path.Combine(dir, OptimizerFile));
        }
        return state;
    }
}

/// <summary>Training stopped on request (Ctrl-C, SIGTERM) between two steps.</summary>
/// <param name="completedSteps">Optimizer steps done when it stopped.</param>
/// <param name="checkpoint">The checkpoint that holds them (written on the way out), or null if none exists.</param>
public sealed class TrainingInterruptedException(int completedSteps, string? checkpoint)
    : OperationCanceledException($"training interrupted after step {completedSteps}")
{
    /// <summary>Optimizer steps done when it stopped.</summary>
    public int CompletedSteps { get; } = completedSteps;
    /// <summary>The checkpoint that holds them, or null if none exists.</summary>
    public string? Checkpoint { get; } = checkpoint;
}
