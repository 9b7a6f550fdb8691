using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftSharp.IO;
using PeftSharp.Tests.TestSupport;
using PeftSharp.Training;

namespace PeftSharp.Tests.Distributed;

/// <summary>
/// `mpirun -np 2 peft train` on a tiny model against one process with the doubled batch: the same loss curve, eval loss
/// and adapter (within 1e-5 relative); resume of a run with another rank count; a killed rank ends the job.
/// </summary>
public class DataParallelTrainingTests
{
    const double Tol = 1e-5;
    static readonly Lazy<(string Model, string Data)> Fixture = new(() => (TinyRun.ModelDir(), TinyRun.Data(48)));

    static List<string> Args(string output, int batch, int steps, params string[] more)
    {
        var (model, data) = Fixture.Value;
        var a = new List<string>
        {
            "train", "--model", model, "--data", data, "--output-dir", output, "--method", "lora", "--r", "4",
            "--per-device-train-batch-size", batch.ToString(), "--max-steps", steps.ToString(), "--max-length", "32",
            "--learning-rate", "0.01", "--lr-scheduler-type", "constant", "--lora-dropout", "0", "--eval-fraction", "0.25",
            "--eval-steps", "2", "--save-steps", "2", "--threads", "1", "--task-eval", "0",
        };
        a.AddRange(more);
        return a;
    }

    static void Train(int ranks, List<string> args)
    {
        var (code, output) = Mpirun.Run(ranks, args);
        Assert.True(code == 0, $"peft train ({(ranks == 0 ? "no mpirun" : $"{ranks} ranks")}) exited {code}:\n{output}");
    }

    static (List<double> Loss, List<double> Eval) Curves(string output)
    {
        var lines = File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        return (lines.Where(l => l["loss"] != null).Select(l => l["loss"]!.GetValue<double>()).ToList(),
                lines.Where(l => l["eval_loss"] != null).Select(l => l["eval_loss"]!.GetValue<double>()).ToList());
    }

    static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual, string what)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= Tol * Math.Abs(expected[i]), $"{what}[{i}]: {actual[i]} vs {expected[i]}");
    }

    /// <summary>Every tensor of the two adapters equal within 1e-5 relative (L2 norm of the difference over the norm).</summary>
    static void AssertSameAdapter(string expectedDir, string actualDir)
    {
        using var e = SafetensorsFile.Open(Path.Combine(expectedDir, "adapter", "adapter_model.safetensors"));
        using var a = SafetensorsFile.Open(Path.Combine(actualDir, "adapter", "adapter_model.safetensors"));
        Assert.Equal(e.Entries.Select(x => x.Name).Order(), a.Entries.Select(x => x.Name).Order());
        int moved = 0;
        foreach (var entry in e.Entries)
        {
            using var te = e.Get(entry.Name);
            using var ta = a.Get(entry.Name);
            var x = te.Floats; var y = ta.Floats;
            double diff = 0, norm = 0;
            for (int i = 0; i < x.Length; i++) { diff += (x[i] - y[i]) * (double)(x[i] - y[i]); norm += x[i] * (double)x[i]; }
            Assert.True(Math.Sqrt(diff) <= Tol * Math.Sqrt(norm) + 1e-12, $"{entry.Name}: relative difference {Math.Sqrt(diff / Math.Max(norm, 1e-300)):E2}");
            if (entry.Name.Contains("lora_B")) moved += norm > 0 ? 1 : 0;
        }
        Assert.True(moved > 0, "training left every lora_B at zero: the comparison would not test anything");
    }

    [MpiFact]
    public void Two_ranks_times_b_train_as_one_process_with_batch_2b()
    {
        string single = TinyRun.Temp("dp1"), pair = TinyRun.Temp("dp2");
        Train(0, Args(single, batch: 4, steps: 4));
        Train(2, Args(pair, batch: 2, steps: 4));

        var (l1, e1) = Curves(single);
        var (l2, e2) = Curves(pair);
        Assert.Equal(4, l1.Count);
        Assert.True(e1.Count >= 2, "the runs evaluate");
        Assert.NotEqual(l1[0], l1[^1]);   // the loss moves: the curve comparison is not of constants
        AssertClose(l1, l2, "loss");
        AssertClose(e1, e2, "eval_loss");
        AssertSameAdapter(single, pair);
        // Rank 0 alone wrote the checkpoints; they record the global batch.
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(pair, "checkpoints", "step-000004", Checkpoint.StateFile)))!;
        Assert.Equal(2, state["ranks"]!.GetValue<int>());
        Assert.Equal(4, state["global_batch_size"]!.GetValue<int>());
    }

    [MpiFact]
    public void A_run_resumes_with_another_rank_count_and_continues_the_same_run()
    {
        string whole = TinyRun.Temp("dpw"), split = TinyRun.Temp("dps");
        Train(0, Args(whole, batch: 4, steps: 6));
        // Steps 1-2 on two ranks, 3-4 on one, 5-6 on two again: global batch 4 throughout.
        Train(2, Args(split, batch: 2, steps: 2));
        Train(0, Args(split, batch: 4, steps: 4, "--resume", "latest"));
        Train(2, Args(split, batch: 2, steps: 6, "--resume", "latest"));

        AssertClose(Curves(whole).Loss, Curves(split).Loss, "loss");
        AssertSameAdapter(whole, split);

        // Another global batch would not be the same run: refused with the batch size that fits.
        var (code, output) = Mpirun.Run(2, Args(split, batch: 1, steps: 8, "--resume", "latest"));
        Assert.NotEqual(0, code);
        Assert.Contains("global batch of 4", output);
    }

    [MpiFact]
    public void A_killed_rank_ends_the_job_with_an_error_and_leaves_only_complete_checkpoints()
    {
        string output = TinyRun.Temp("dpk");
        var args = Args(output, batch: 2, steps: 100000);
        args[args.IndexOf("--save-steps") + 1] = "1";
        using var mpirun = Process.Start(Mpirun.StartInfo(2, args))!;
        var stdout = mpirun.StandardOutput.ReadToEndAsync();
        var stderr = mpirun.StandardError.ReadToEndAsync();
        try
        {
            string metrics = Path.Combine(output, "metrics.jsonl");
            var waiting = Stopwatch.StartNew();
            while (!(File.Exists(metrics) && File.ReadAllLines(metrics).Count(l => l.Contains("\"loss\"")) >= 2))
            {
                Assert.False(mpirun.HasExited, "the job ended before training");
                Assert.True(waiting.Elapsed < TimeSpan.FromMinutes(2), "no training step within 2 minutes");
                Thread.Sleep(100);
            }
            Process.GetProcessById(RankProcess(mpirun.Id, 1)).Kill();
            // A guard against a hang, not a speed assertion.
            Assert.True(mpirun.WaitForExit(TimeSpan.FromSeconds(60)), "mpirun still running 60 s after a rank was killed");
        }
        finally
        {
            if (!mpirun.HasExited) mpirun.Kill(entireProcessTree: true);
        }
        mpirun.WaitForExit();
        string said = stdout.Result + stderr.Result;
        Assert.True(mpirun.ExitCode != 0, $"mpirun exited 0 after a rank was killed:\n{said}");
        Assert.Contains("exited on signal 9", said);   // mpirun names the rank that died and how

        var checkpoints = Checkpoint.List(Path.Combine(output, "checkpoints"));
        Assert.NotEmpty(checkpoints);
        foreach (var c in checkpoints)
            foreach (var f in new[] { Checkpoint.ParamsFile, Checkpoint.OptimizerFile, "adapter_model.safetensors" })
                using (SafetensorsFile.Open(Path.Combine(c, f))) { }   // complete and readable
    }

    /// <summary>The pid of the child of <paramref name="mpirunPid"/> that runs rank <paramref name="rank"/>.</summary>
    static int RankProcess(int mpirunPid, int rank)
    {
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                int ppid = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
                if (ppid != mpirunPid) continue;
                var env = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                if (env.Contains($"OMPI_COMM_WORLD_RANK={rank}")) return pid;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        throw new Xunit.Sdk.XunitException($"no child of mpirun {mpirunPid} runs rank {rank}");
    }
}
