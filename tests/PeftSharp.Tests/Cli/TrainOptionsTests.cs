using PeftSharp.Cli.Training;
using PeftSharp.IO;
using PeftSharp.Optim;
using PeftSharp.Planning;
using PeftSharp.Training;
using PeftSharp.Tests.TestSupport;


namespace PeftSharp.Tests.Cli;

/// <summary>`peft train`'s settings layer: did-you-mean, aliases, epochs and warmup ratio as steps, help defaults,
/// the start-of-run memory line and the live line.</summary>
public class TrainOptionsTests
{
    static TrainRequest Empty => new(new TrainingOptions { ModelDir = "", DataFile = "", OutputDir = "" });

    static string Yaml(string text)
    {
        string path = Path.Combine(Path.GetTempPath(), $"peft-settings-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, text);
        return path;
    }

    [Theory]
    [InlineData("learning_rte: 0.1", "did you mean 'learning_rate'?")]
    [InlineData("lora_aplha: 8", "did you mean 'lora_alpha'?")]
    [InlineData("max-steps: 3", "did you mean 'max_steps'?")]
    [InlineData("num_train_epoch: 3", "did you mean 'num_train_epochs'?")]
    public void A_misspelt_yaml_key_names_the_nearest_valid_one(string yaml, string hint)
    {
        string path = Yaml("r: 4\n" + yaml + "\n");
        var e = Assert.Throws<PeftException>(() => TrainSettings.ApplyYaml(Empty, path));
        Assert.Contains($"{path}:2: unknown setting", e.Message);
        Assert.Contains(hint, e.Message);
        File.Delete(path);
    }

    [Fact]
    public void A_key_far_from_every_name_lists_the_known_ones()
    {
        string path = Yaml("zzzzzzzzzz: 1\n");
        var e = Assert.Throws<PeftException>(() => TrainSettings.ApplyYaml(Empty, path));
        Assert.Contains("known: model, data", e.Message);
        File.Delete(path);
    }

    [Fact]
    public void Max_seq_length_is_max_length_and_epochs_and_ratio_become_steps()
    {
        string path = Yaml("max_seq_length: 96\nnum_train_epochs: 2.5\nwarmup_ratio: 0.1\ngradient_accumulation_steps: 2\n");
        var r = TrainSettings.ApplyYaml(Empty, path);
        File.Delete(path);
        Assert.Equal(96, r.Options.MaxLength);
        // 9 micro-batches per epoch, 2 per step → 4 steps per epoch (transformers floors), 2.5 epochs → 10 steps.
        var o = TrainSettings.Finish(r, _ => 9);
        Assert.Equal(10, o.MaxSteps);
        Assert.Equal(1, o.WarmupSteps);   // ⌈0.1 × 10⌉
        Assert.Equal(7, TrainSettings.Finish(new TrainRequest(o) { WarmupRatio = 0.61 }, _ => throw new Exception("not needed")).WarmupSteps);
    }

    [Fact]
    public void Two_spellings_of_one_thing_in_one_file_are_refused_and_a_later_layer_overrides()
    {
        string both = Yaml("max_steps: 5\nnum_train_epochs: 1\n");
        Assert.Contains("give max_steps or num_train_epochs, not both", Assert.Throws<PeftException>(() => TrainSettings.ApplyYaml(Empty, both)).Message);
        string epochs = Yaml("num_train_epochs: 1\n"), steps = Yaml("max_steps: 7\n");
        var r = TrainSettings.ApplyYaml(TrainSettings.ApplyYaml(Empty, epochs), steps);
        Assert.Null(r.NumTrainEpochs);
        Assert.Equal(7, TrainSettings.Finish(r, _ => throw new Exception("epochs were overridden")).MaxSteps);
        foreach (var p in new[] { both, epochs, steps }) File.Delete(p);
        Assert.Throws<PeftException>(() => TrainSettings.Finish(Empty with { WarmupRatio = 1.5 }, _ => 1));
    }

    [Fact]
    public void Learning_rates_print_as_scientific_with_one_decimal()
    {
        Assert.Equal("3.0e-3", NumberFormat.Lr(0.003));
        Assert.Equal("2.0e-4", NumberFormat.Lr(2e-4));
        Assert.Equal("1.5e-5", NumberFormat.Lr(1.5e-5));
        var line = TrainProgress.StepLine(new StepMetrics(3, 10, 1.23456, 0.003, 0.5, 1000, 10, 100, 6, 0), 14);
        Assert.Contains("lr 3.0e-3", line);
        Assert.EndsWith("ETA 0:00:14", line);
        Assert.Equal("▁▅█▁", TrainProgress.Sparkline([1.0, 1.5, 2.0, 1.0]));
        Assert.StartsWith("step 3/10  loss 1.2346 ▁▅█▁  lr 3.0e-3  ETA 0:00:14", TrainProgress.LiveLine(
            new StepMetrics(3, 10, 1.23456, 0.003, 0.5, 1000, 10, 100, 6, 0), 14, [1.0, 1.5, 2.0, 1.0]));
    }

    [Theory]
    [InlineData("adamw")]
    [InlineData("adamw8bit")]
    public void The_start_of_run_optimizer_size_is_what_the_optimizer_holds_after_its_first_step(string name)
    {
        var sizes = new[] { 100, 5000, 70000 };
        Optimizer opt = name == "adamw8bit" ? new AdamW8bit(TestCompute.Cpu) : new AdamW(TestCompute.Cpu);
        long expected = MemoryEstimator.OptimizerStateBytes(sizes.Select(s => (long)s), name);
        var line = TrainProgress.MemoryLine(new MemoryReport(0, 0, 0, opt.StateBytes, 0, 0), expected);
        opt.BeginStep();
        for (int i = 0; i < sizes.Length; i++) opt.Step(i, new float[sizes[i]], new float[sizes[i]], 1e-3f);
        Assert.Equal(opt.StateBytes, expected);
        Assert.EndsWith($"optimizer {expected / 1048576.0:F1} MiB", line);
    }

    [Fact]
    public void Summary_json_is_snake_case_and_the_older_pascal_case_still_reads()
    {
        string dir = PeftProcess.TempDir("summary");
        try
        {
            var result = new TrainingResult(5, 1.5, new EvalMetrics(0, 3, 20, 10), new EvalMetrics(5, 2, 7.4, 10), "a/adapter", 1.25, 900,
                new MemoryReport(1, 2, 3, 4, 5, 6.5), 100, 1000);
            TrainingSummary.Write(dir, result);
            string text = File.ReadAllText(Path.Combine(dir, "summary.json"));
            Assert.Contains("\"final_loss\": 1.5", text);
            Assert.Contains("\"peak_rss_mb\": 6.5", text);
            Assert.DoesNotContain("FinalLoss", text);
            Assert.Equal(result, TrainingSummary.Read(Path.Combine(dir, "summary.json")));
            File.WriteAllText(Path.Combine(dir, "old.json"), System.Text.Json.JsonSerializer.Serialize(result));
            Assert.Equal(result, TrainingSummary.Read(Path.Combine(dir, "old.json")));
            Assert.Equal(new Checkpoint.State(4, 1, 2, "lora", 42, 2),
                SnakeCaseJson.Deserialize<Checkpoint.State>("""{"Step":4,"Epoch":1,"Batch":2,"Method":"lora","Seed":42,"Threads":2}"""));
        }
        finally { Directory.Delete(dir, true); }
    }
}

/// <summary>`peft train` end to end on the embedded model: epochs counted from the data, the help's defaults.</summary>
public class TrainCommandTests
{
    [Fact]
    public void Num_train_epochs_counts_the_batches_of_the_data()
    {
        string dir = PeftProcess.TempDir("epochs");
        try
        {
            // 6 training records, unpacked, 2 per batch → 3 batches per epoch; 2 epochs → 6 steps; warmup ⌈0.5 × 6⌉ = 3.
            string data = PeftProcess.DemoLikeData(dir, 6), eval = PeftProcess.DemoLikeData(dir, 2, "eval.jsonl");
            var (code, stdout, stderr) = PeftProcess.Run(["train", "--model", PeftProcess.DefaultModel, "--data", data, "--eval-data", eval,
                "--packing", "false", "--per-device-train-batch-size", "2", "--max-length", "32", "--num-train-epochs", "2", "--warmup-ratio", "0.5",
                "--task-eval", "0", "--output-dir", "out", "--threads", "1"], workingDir: dir);
            Assert.True(code == 0, stdout + stderr);
            Assert.Contains("num_train_epochs 2: 6 optimizer steps", stdout);
            Assert.Contains("step 6/6", stdout);
            Assert.Contains("\"final_loss\"", File.ReadAllText(Path.Combine(dir, "out", "summary.json")));
            var summary = TrainingSummary.Read(Path.Combine(dir, "out", "summary.json"));
            Assert.Equal(6, summary.Steps);
            // The start-of-run line reports the optimizer state the run then holds (metrics.jsonl's accounting).
            var optimizerLine = stdout.Split('\n').First(l => l.StartsWith("memory:"));
            Assert.DoesNotContain("optimizer 0.0 MiB", optimizerLine);
            // Warmup of 3 steps: the learning rate rises over steps 1..3.
            var lrs = File.ReadAllLines(Path.Combine(dir, "out", "metrics.jsonl")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
                .Where(e => e.TryGetProperty("lr", out _)).Select(e => e.GetProperty("lr").GetDouble()).ToList();
            Assert.True(lrs[0] < lrs[1] && lrs[1] < lrs[2], string.Join(",", lrs));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Help_shows_every_default_and_the_demo_values_where_they_differ()
    {
        var (code, stdout, _) = PeftProcess.Run(["train", "--help"]);
        Assert.Equal(0, code);
        string help = string.Join(" ", stdout.Split('\n').Select(l => l.Trim()));
        Assert.Contains("peak learning rate [default: 2.0e-4; demo: 3.0e-3]", help);
        Assert.Contains("optimizer steps [default: 100; demo: 200]", help);
        Assert.Contains("LoRA rank [default: 16]", help);
        Assert.Contains("--max-length, --max-seq-length", help);
        Assert.Contains("--num-train-epochs", help);
        Assert.Contains("--warmup-ratio", help);
        Assert.Contains("--report-to", help);
        foreach (var s in TrainSettings.All.Where(s => s.Key is not ("model" or "data")))
            Assert.Contains(TrainSettings.FlagName(s.Key), help);
    }
}
