using PeftSharp.Models;
using PeftSharp.Planning;
using PeftSharp.Training;

namespace PeftSharp.Cli.Training;

/// <summary>Checks made before anything large is allocated: option ranges, and the estimated memory of the run
/// against what the process may use (so --r 100000 or a batch of 100000 ends in one line saying what it would need).</summary>
public static class TrainPreflight
{
    public static void Check(TrainingOptions o, long? availableBytes = null)
    {
        o.Validate();
        string configPath = Path.Combine(o.ModelDir, "config.json");
        if (!File.Exists(configPath)) return;   // the trainer reports the missing model itself
        var config = ModelConfig.Load(configPath);
        string targets = o.Lora.TargetModules is { } list && list.All(ParameterCounter.AllLinear.Contains) && list.Count > 0
            ? string.Join(",", list) : "all-linear";   // a regex or other names: count every projection (an upper bound)
        var mts = o.Lora.ModulesToSave is { Count: > 0 } saved && saved.All(ModulesToSaveCount.Supported.Contains)
            ? ModulesToSaveCount.Of(config, saved, o.Lora.EnsureWeightTying) : null;
        var e = MemoryEstimator.Estimate(config, o.Method, o.BatchSize, o.MaxLength, o.Lora.R, targets, o.GradientCheckpointing, o.Optimizer,
            modulesToSave: mts);
        MemoryGuard.EnsureFits(e.TotalBytes,
            $"training ({o.Method}, r {o.Lora.R}, batch {o.BatchSize} × {o.MaxLength} tokens)",
            $"weights {ByteSize.Format(e.WeightsBytes)}, adapter {ByteSize.Format(e.AdapterBytes)}, gradients {ByteSize.Format(e.GradientBytes)}, " +
            $"optimizer {ByteSize.Format(e.OptimizerBytes)}, activations {ByteSize.Format(e.ActivationBytes)}",
            "lower r, per_device_train_batch_size or max_length, or use gradient_checkpointing", availableBytes);
    }

    /// <summary>The command that continues this run: the same arguments with --resume latest (and without
    /// --resume/--overwrite given before).</summary>
    public static string ResumeCommand(IReadOnlyList<string> args)
    {
        var kept = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a is "--overwrite") { if (i + 1 < args.Count && args[i + 1] is "true" or "false") i++; continue; }
            if (a is "--resume") { i++; continue; }
            if (a.StartsWith("--resume=", StringComparison.Ordinal) || a.StartsWith("--overwrite=", StringComparison.Ordinal)) continue;
            kept.Add(a);
        }
        return string.Join(" ", new[] { "peft" }.Concat(kept).Concat(["--resume", "latest"]).Select(Quote));
    }

    static string Quote(string a) =>
        a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";
}
