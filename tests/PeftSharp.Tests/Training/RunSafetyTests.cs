using System.Diagnostics;
using PeftSharp.Cli;
using PeftSharp.Cli.Training;
using PeftSharp.Nn;
using PeftSharp.Optim;
using PeftSharp.Training;

namespace PeftSharp.Tests.Training;

/// <summary>Issue #13's crash-safety findings: checkpoints that are listed are complete, what killed runs leave is
/// cleaned, a used or locked output folder is refused, a full disk leaves earlier checkpoints intact, and every
/// numeric training setting is range-checked.</summary>
public class RunSafetyTests
{
    static string Temp() => TestSupport.TinyRun.Temp("safety");

    static string Save(string checkpoints, int step, int keep = 10, int rows = 4)
    {
        var p = new Parameter("w", rows, 4);
        p.Value.Floats.Fill(step);
        var opt = new AdamW(TestSupport.TestCompute.Cpu);
        opt.BeginStep();
        opt.Step(0, p.Value.Floats, new float[rows * 4], 1e-3f);
        return Checkpoint.Save(checkpoints, new Checkpoint.State(step, 0, step, "lora", 1, 1, 0.5), [p], opt,
            dir => File.WriteAllText(Path.Combine(dir, "adapter_config.json"), "{}"), keep);
    }

    [Fact]
    public void OnlyFoldersWithTheCompletionMarkerAreListed()
    {
        string dir = Path.Combine(Temp(), "checkpoints");
        string good = Save(dir, 1);
        Assert.True(File.Exists(Path.Combine(good, Checkpoint.CompleteMarker)));
        // A folder that lost its tensors (a kill during an old-style prune), one mid-save, one mid-prune, a stray name.
        string halfDeleted = Path.Combine(dir, "step-000002");
        Directory.CreateDirectory(halfDeleted);
        File.WriteAllText(Path.Combine(halfDeleted, Checkpoint.StateFile), "{}");
        Directory.CreateDirectory(Path.Combine(dir, "step-000003.tmp"));
        Directory.CreateDirectory(Path.Combine(dir, "step-000004.deleting"));
        Directory.CreateDirectory(Path.Combine(dir, "step-x"));
        Assert.Equal([good], Checkpoint.List(dir));

        var removed = Checkpoint.CleanStale(dir);
        Assert.Equal(2, removed.Count);
        Assert.False(Directory.Exists(Path.Combine(dir, "step-000003.tmp")));
        Assert.False(Directory.Exists(Path.Combine(dir, "step-000004.deleting")));
    }

    [Fact]
    public void PruningKeepsTheNewestAndLeavesNoHalfFolders()
    {
        string dir = Path.Combine(Temp(), "checkpoints");
        for (int s = 1; s <= 5; s++) Save(dir, s, keep: 2);
        Assert.Equal(["step-000004", "step-000005"], Checkpoint.List(dir).Select(Path.GetFileName));
        Assert.Equal(["step-000004", "step-000005"], Directory.GetDirectories(dir).Select(Path.GetFileName).Order());
        Assert.Equal(0.5, Checkpoint.ReadState(Checkpoint.List(dir)[^1]).Loss);
    }

    [Fact]
    public void CheckpointsWrittenBeforeTheMarkerExistedStillList()
    {
        string dir = Path.Combine(Temp(), "checkpoints");
        string old = Save(dir, 7);
        File.Delete(Path.Combine(old, Checkpoint.CompleteMarker));
        Assert.Equal([old], Checkpoint.List(dir));
        File.Delete(Path.Combine(old, Checkpoint.OptimizerFile));
        Assert.Empty(Checkpoint.List(dir));
    }

    [SkippableFact]
    public void FullDiskGivesAClearErrorAndKeepsTheEarlierCheckpoint()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "tmpfs mounts need Linux");
        string mount = Temp();
        var (code, output) = Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mount);
        Skip.If(code != 0, $"cannot mount a small tmpfs here (needs root / CAP_SYS_ADMIN): {output.Trim()}");
        try
        {
            string dir = Path.Combine(mount, "checkpoints");
            string first = Save(dir, 1, rows: 4096);   // 64 KiB per tensor, about 200 KiB in all
            long free = new DriveInfo(mount).AvailableFreeSpace;
            File.WriteAllBytes(Path.Combine(mount, "filler"), new byte[free - 100 * 1024]);   // leave half a checkpoint
            var e = Assert.Throws<PeftException>(() => Save(dir, 2, rows: 4096));
            Assert.Contains("step-000002", e.Message);
            Assert.Contains("earlier checkpoints are intact", e.Message);
            Assert.Equal([first], Checkpoint.List(dir));
            Assert.Equal(["step-000001"], Directory.GetDirectories(dir).Select(Path.GetFileName));   // the .tmp is gone
            Assert.Empty(Directory.GetFiles(mount, ".*tmp*", SearchOption.AllDirectories));
        }
        finally { Run("umount", mount); }
    }

    static (int Code, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            string o = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, o);
        }
        catch (System.ComponentModel.Win32Exception e) { return (-1, e.Message); }
    }

    [Fact]
    public void AUsedOutputFolderIsRefusedUnlessResumedOrOverwritten()
    {
        string dir = Temp();
        File.WriteAllText(Path.Combine(dir, "metrics.jsonl"), "{}\n");
        Directory.CreateDirectory(Path.Combine(dir, "adapter"));
        var e = Assert.Throws<PeftException>(() => RunFolder.Open(dir, resume: false, overwrite: false));
        Assert.Contains("--resume latest", e.Message);
        Assert.Contains("--overwrite", e.Message);
        using (RunFolder.Open(dir, resume: true, overwrite: false)) Assert.True(File.Exists(Path.Combine(dir, "metrics.jsonl")));
        using (var f = RunFolder.Open(dir, resume: false, overwrite: true))
        {
            Assert.False(File.Exists(Path.Combine(dir, "metrics.jsonl")));
            Assert.False(Directory.Exists(Path.Combine(dir, "adapter")));
            Assert.Equal(2, f.Removed.Count);
        }
    }

    [Fact]
    public void ARunFolderIsLockedWhileInUseAndReleasedAfter()
    {
        string dir = Temp();
        using (var held = RunFolder.Open(dir, resume: false, overwrite: false))
        {
            var e = Assert.Throws<PeftException>(() => RunFolder.Open(dir, resume: true, overwrite: false));
            Assert.Contains("in use by another", e.Message);
        }
        using (RunFolder.Open(dir, resume: true, overwrite: false)) { }
        Assert.False(File.Exists(Path.Combine(dir, RunFolder.LockName)));
    }

    [Fact]
    public void StaleTempFilesOfKilledWritersAreCleaned()
    {
        string dir = Temp();
        Directory.CreateDirectory(Path.Combine(dir, "adapter"));
        string stale = Path.Combine(dir, "adapter", ".adapter_model.safetensors.tmp-12345-0123456789abcdef");
        File.WriteAllText(stale, "half");
        using var f = RunFolder.Open(dir, resume: true, overwrite: false);
        Assert.False(File.Exists(stale));
        Assert.Contains(stale, f.Removed);
    }

    [Fact]
    public void AnOutputDirThatIsAFileIsNamed()
    {
        string file = Path.Combine(Temp(), "afile");
        File.WriteAllText(file, "");
        Assert.Contains("is a file, not a folder", Assert.Throws<PeftException>(() => RunFolder.Open(file, false, false)).Message);
    }

    [Fact]
    public void ResumeCommandRepeatsTheArgumentsWithResumeLatest()
    {
        Assert.Equal("peft train --model m --data 'my data.jsonl' --resume latest",
            TrainPreflight.ResumeCommand(["train", "--model", "m", "--data", "my data.jsonl", "--resume", "step-1", "--overwrite"]));
    }

    static TrainingOptions Options => new() { ModelDir = "m", DataFile = "d", OutputDir = "o" };

    public static TheoryData<Func<TrainingOptions, TrainingOptions>, string> BadOptions => new()
    {
        { o => o with { Lora = o.Lora with { LoraAlpha = 0 } }, "lora_alpha" },
        { o => o with { Lora = o.Lora with { LoraAlpha = -1 } }, "lora_alpha" },
        { o => o with { Lora = o.Lora with { LoraAlpha = double.NaN } }, "lora_alpha" },
        { o => o with { Lora = o.Lora with { LoraDropout = double.NaN } }, "lora_dropout" },
        { o => o with { Lora = o.Lora with { TargetModulesRegex = "(" } }, "target_modules" },
        { o => o with { WarmupSteps = -1 }, "warmup_steps" },
        { o => o with { WeightDecay = -0.1 }, "weight_decay" },
        { o => o with { MaxGradNorm = -1 }, "max_grad_norm" },
        { o => o with { MaxGradNorm = double.PositiveInfinity }, "max_grad_norm" },
        { o => o with { AdamEpsilon = -1e-8 }, "adam_epsilon" },
        { o => o with { AdamEpsilon = 0 }, "adam_epsilon" },
        { o => o with { AdamBeta1 = 1 }, "adam_beta1" },
        { o => o with { AdamBeta2 = double.NaN }, "adam_beta2" },
        { o => o with { LearningRate = 1e30 }, "learning_rate" },
        { o => o with { LearningRate = double.NaN }, "learning_rate" },
        { o => o with { EvalFraction = double.NaN }, "eval_fraction" },

        { o => o with { SaveSteps = -1 }, "save_steps" },
        { o => o with { EvalSteps = -1 }, "eval_steps" },
        { o => o with { LoggingSteps = 0 }, "logging_steps" },
        { o => o with { LoggingSteps = -1 }, "logging_steps" },
        { o => o with { SaveTotalLimit = 0 }, "save_total_limit" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void OutOfRangeSettingsAreRefusedNamingTheSetting(Func<TrainingOptions, TrainingOptions> change, string key)
    {
        Options.Validate();
        Assert.Contains(key, Assert.Throws<PeftException>(() => change(Options).Validate()).Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(100_000)]
    public void ThreadCountsOutsideOneToEightTimesTheCoresAreRefused(int threads) =>
        Assert.Contains("--threads", Assert.Throws<PeftException>(() => SharedOptions.CheckThreads(threads)).Message);

    [Fact]
    public void HugeRankOrBatchIsRefusedBeforeAllocatingSayingWhatItWouldNeed()
    {
        string model = TestSupport.TinyRun.ModelDir();
        var o = Options with { ModelDir = model };
        TrainPreflight.Check(o, availableBytes: 1L << 30);
        var e = Assert.Throws<PeftException>(() => TrainPreflight.Check(o with { Lora = o.Lora with { R = 100_000 } }, availableBytes: 1L << 30));
        Assert.Contains("r 100000", e.Message);
        Assert.Contains("would need about", e.Message);
        e = Assert.Throws<PeftException>(() => TrainPreflight.Check(o with { BatchSize = 100_000 }, availableBytes: 1L << 30));
        Assert.Contains("batch 100000", e.Message);
    }
}
