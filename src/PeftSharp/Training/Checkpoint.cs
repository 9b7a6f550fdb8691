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
/// a crash never leaves a half checkpoint under the real name.
/// </summary>
internal static class Checkpoint
{
    public const string StateFile = "trainer_state.json";
    public const string ParamsFile = "trainable.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";

    /// <summary>What trainer_state.json holds. (Epoch, Batch) counts global batches of GlobalBatchSize sequences (all
    /// ranks together; 0: not recorded, a checkpoint from before data parallelism); Ranks is how many ranks wrote it.</summary>
    public sealed record State(int Step, int Epoch, int Batch, string Method, int Seed, int Threads, int Ranks = 1, int GlobalBatchSize = 0);

    public static string Save(string checkpointsDir, State state, IReadOnlyList<Parameter> parameters, Optimizer optimizer,
        Action<string> writeAdapter, int keepLast)
    {
        Directory.CreateDirectory(checkpointsDir);
        string name = $"step-{state.Step:D6}";
        string final = Path.Combine(checkpointsDir, name), tmp = final + ".tmp";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        SafetensorsWriter.Write(Path.Combine(tmp, ParamsFile), parameters.Select(p => (p.Name, p.Value)));
        var opt = optimizer.SaveState();
        try { SafetensorsWriter.Write(Path.Combine(tmp, OptimizerFile), opt.Select(kv => (kv.Key, kv.Value))); }
        finally { foreach (var t in opt.Values) t.Dispose(); }
        writeAdapter(tmp);
        AtomicFile.WriteAllText(Path.Combine(tmp, StateFile), SnakeCaseJson.Serialize(state));
        if (Directory.Exists(final)) Directory.Delete(final, true);
        Directory.Move(tmp, final);
        Prune(checkpointsDir, keepLast);
        return final;
    }

    static void Prune(string dir, int keepLast)
    {
        if (keepLast <= 0) return;
        foreach (var old in List(dir).SkipLast(keepLast)) Directory.Delete(old, true);
    }

    /// <summary>Complete checkpoints (those with a state file), oldest first.</summary>
    public static IReadOnlyList<string> List(string checkpointsDir) =>
        !Directory.Exists(checkpointsDir) ? [] :
        Directory.GetDirectories(checkpointsDir, "step-*")
            .Where(d => !d.EndsWith(".tmp") && File.Exists(Path.Combine(d, StateFile)))
            .OrderBy(d => d, StringComparer.Ordinal).ToList();

    /// <summary>Restores parameters and optimizer state in place; returns the saved state.</summary>
    public static State Load(string dir, IReadOnlyList<Parameter> parameters, Optimizer optimizer)
    {
        var statePath = Path.Combine(dir, StateFile);
        if (!File.Exists(statePath)) throw new PeftException($"{dir}: not a checkpoint (no {StateFile})");
        State state;
        // snake_case since the JSON spelling was unified; checkpoints of earlier versions are PascalCase.
        try { state = SnakeCaseJson.Deserialize<State>(File.ReadAllText(statePath)) ?? throw new PeftException($"{statePath}: empty"); }
        catch (JsonException e) { throw new PeftException($"{statePath}: invalid JSON ({e.Message})"); }

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
