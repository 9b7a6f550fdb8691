using System.Text.Json;
using PeftSharp.Cli.Comparison;

namespace PeftSharp.Tests.Comparison;

/// <summary>Orchestration with an injected runner: failures are reported per method, finished methods are not rerun.</summary>
public class ComparisonRunTests
{
    /// <summary>Pretends to be `peft train`: writes a finished run, or fails for methods it does not know.</summary>
    sealed class FakeRunner(params string[] known) : IMethodRunner
    {
        public readonly List<string> Ran = [];

        public MethodRunOutcome Run(IReadOnlyList<string> args, string logPath, Action<string>? onLine, CancellationToken cancel)
        {
            string method = args[args.ToList().IndexOf("--method") + 1];
            string outDir = args[args.ToList().IndexOf("--output-dir") + 1];
            Ran.Add(method);
            File.WriteAllText(logPath, "log\n");
            if (!known.Contains(method))
                return new MethodRunOutcome(1, $"error: method \"{method}\" is not supported (expected lora, dora or full)");
            ComparisonFixtures.WriteFinishedRun(outDir, finalLoss: 2.0 + Ran.Count);
            return new MethodRunOutcome(0, null);
        }
    }

    static (string Dir, ComparisonSettings Settings) Setup(params string[] methods)
    {
        string dir = ComparisonFixtures.TempDir("cmp-run");
        string data = ComparisonFixtures.WriteDataFile(dir);
        string model = Path.Combine(dir, "model");
        Directory.CreateDirectory(model);
        File.WriteAllText(Path.Combine(model, "config.json"), "{}");
        return (dir, ComparisonFixtures.Settings(Path.Combine(dir, "out"), data, model, methods));
    }

    [Fact]
    public void A_rejected_method_is_marked_failed_with_its_error_line_and_the_others_are_reported()
    {
        var (dir, s) = Setup();
        try
        {
            var runner = new FakeRunner("full", "lora", "dora");
            var report = ComparisonRun.Execute(s, runner);
            Assert.Equal(["full", "lora", "dora", "qlora", "qdora"], runner.Ran);
            Assert.Equal(["full", "lora", "dora", "qlora", "qdora"], report.Results.Select(r => r.Method));
            var qlora = report.Results.Single(r => r.Method == "qlora");
            Assert.Equal(MethodStatus.Failed, qlora.Status);
            Assert.Equal("error: method \"qlora\" is not supported (expected lora, dora or full)", qlora.Error);
            Assert.Null(qlora.PeakRssMib);
            var lora = report.Results.Single(r => r.Method == "lora");
            Assert.Equal(MethodStatus.Trained, lora.Status);
            Assert.Equal(4.0, lora.FinalTrainLoss);   // the second run's summary
            Assert.Equal(123.4, lora.PeakRssMib);
            Assert.Equal(ClaimVerdict.NotMeasured, report.Claims.Single(c => c.Title.StartsWith("LoRA speed")).Verdict);
            Assert.NotEqual(ClaimVerdict.NotMeasured, report.Claims.Single(c => c.Title.StartsWith("DoRA")).Verdict);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_finished_method_is_not_run_again_and_an_unfinished_one_is_restarted()
    {
        var (dir, s) = Setup("full", "lora", "dora");
        try
        {
            // An earlier, interrupted comparison: lora finished, dora was killed mid-way (no summary.json).
            ComparisonFixtures.WriteFinishedRun(s.MethodDir("lora"), finalLoss: 9.5);
            Directory.CreateDirectory(Path.Combine(s.MethodDir("dora"), "checkpoints"));
            File.WriteAllText(Path.Combine(s.MethodDir("dora"), "metrics.jsonl"), "{\"step\":1,\"loss\":3.0}\n{\"step\":2,\"lo");
            var runner = new FakeRunner("full", "lora", "dora");
            var report = ComparisonRun.Execute(s, runner);
            Assert.Equal(["full", "dora"], runner.Ran);
            var lora = report.Results.Single(r => r.Method == "lora");
            Assert.Equal(MethodStatus.Reused, lora.Status);
            Assert.Equal(9.5, lora.FinalTrainLoss);
            Assert.False(Directory.Exists(Path.Combine(s.MethodDir("dora"), "checkpoints")));   // restarted from scratch
            Assert.Equal(MethodStatus.Trained, report.Results.Single(r => r.Method == "dora").Status);

            // Running again reuses everything; --force reruns everything.
            var again = new FakeRunner("full", "lora", "dora");
            Assert.All(ComparisonRun.Execute(s, again).Results, r => Assert.Equal(MethodStatus.Reused, r.Status));
            Assert.Empty(again.Ran);
            var forced = new FakeRunner("full", "lora", "dora");
            ComparisonRun.Execute(s with { Force = true }, forced);
            Assert.Equal(["full", "lora", "dora"], forced.Ran);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_finished_method_with_different_settings_is_an_error_not_a_silent_mix()
    {
        var (dir, s) = Setup("lora");
        try
        {
            ComparisonRun.Execute(s, new FakeRunner("lora"));
            var e = Assert.Throws<PeftException>(() => ComparisonRun.Execute(s with { MaxSteps = 7 }, new FakeRunner("lora")));
            Assert.Contains("different settings", e.Message);
            Assert.Contains("--force", e.Message);
            var recorded = JsonSerializer.Deserialize<string[]>(File.ReadAllText(Path.Combine(s.MethodDir("lora"), ComparisonRun.ArgumentsFile)))!;
            Assert.Equal(s.TrainArguments("lora"), recorded);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Seeds_run_every_method_once_per_seed_and_reuse_the_first_seed_of_a_one_seed_comparison()
    {
        var (dir, s) = Setup("lora", "dora");
        try
        {
            ComparisonRun.Execute(s, new FakeRunner("lora", "dora"));   // one seed first: lora/ and dora/
            var runner = new FakeRunner("lora", "dora");
            var report = ComparisonRun.Execute(s with { Seeds = 3 }, runner);
            Assert.Equal(["lora", "dora", "lora", "dora"], runner.Ran);   // seed 42 reused; 43 and 44 trained, all methods per seed
            Assert.True(File.Exists(Path.Combine(s.OutputDir, "lora.seed-43", "summary.json")));
            Assert.True(File.Exists(Path.Combine(s.OutputDir, "dora.seed-44", "summary.json")));
            Assert.Equal(6, report.Runs.Count);
            Assert.Equal([42, 43, 44], report.Runs.Where(r => r.Method == "lora").SelectMany(r => r.Seeds));
            var lora = report.Results.Single(r => r.Method == "lora");
            Assert.Equal([42, 43, 44], lora.Seeds);
            // The fake runner's final loss is 2 + its run count: lora 3 (seed 42, first invocation), 3 and 5.
            Assert.Equal(11.0 / 3, lora.FinalTrainLoss!.Value, 12);
            Assert.NotNull(lora.Spread);
            Assert.Equal(SeedAggregate.StdDev(report.Runs.Where(r => r.Method == "lora").ToList(), r => r.FinalTrainLoss), lora.Spread!.FinalTrainLoss);
            var recorded = JsonSerializer.Deserialize<string[]>(File.ReadAllText(Path.Combine(s.OutputDir, "lora.seed-44", ComparisonRun.ArgumentsFile)))!;
            Assert.Equal("44", recorded[recorded.ToList().IndexOf("--seed") + 1]);
        }
        finally { Directory.Delete(dir, true); }
    }
}
