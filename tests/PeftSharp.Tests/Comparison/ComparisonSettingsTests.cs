using PeftSharp.Cli.Comparison;

namespace PeftSharp.Tests.Comparison;

public class ComparisonSettingsTests
{
    static ComparisonSettings S() => new() { ModelDir = "m", DataFile = "d.jsonl", EvalFile = "e.jsonl", OutputDir = "out", Threads = 2 };

    static Dictionary<string, string> Flags(IReadOnlyList<string> args)
    {
        var d = new Dictionary<string, string>();
        for (int i = 1; i < args.Count; i += 2) d[args[i]] = args[i + 1];
        return d;
    }

    [Fact]
    public void TrainArguments_differ_only_in_method_output_and_overridden_learning_rate()
    {
        var s = S();
        var lora = Flags(s.TrainArguments("lora"));
        var full = Flags(s.TrainArguments("full"));
        Assert.Equal("train", s.TrainArguments("lora")[0]);
        Assert.Equal("lora", lora["--method"]);
        Assert.Equal(Path.Combine("out", "lora"), lora["--output-dir"]);
        Assert.Equal("0.003", lora["--learning-rate"]);
        Assert.Equal("0.0003", full["--learning-rate"]);   // the documented default override for full fine-tuning
        var differing = lora.Keys.Where(k => lora[k] != full[k]).OrderBy(k => k).ToArray();
        Assert.Equal(new[] { "--learning-rate", "--method", "--output-dir" }, differing);
        foreach (var (flag, value) in new[] { ("--max-steps", "150"), ("--seed", "42"), ("--lr-scheduler-type", "cosine"), ("--r", "16"),
                     ("--lora-alpha", "32"), ("--threads", "2"), ("--model", "m"), ("--data", "d.jsonl"), ("--eval-data", "e.jsonl") })
            Assert.Equal(value, lora[flag]);
    }

    [Fact]
    public void Override_pairs_parse_and_malformed_pairs_are_rejected()
    {
        var d = ComparisonSettings.ParseOverrides(["full=1e-5,qlora=3e-4", "dora=0.001"]);
        Assert.Equal(1e-5, d["full"]);
        Assert.Equal(3e-4, d["qlora"]);
        Assert.Equal(1e-3, d["dora"]);
        var e = Assert.Throws<PeftException>(() => ComparisonSettings.ParseOverrides(["full:1e-4"]));
        Assert.Contains("method=learning_rate", e.Message);
        Assert.Throws<PeftException>(() => ComparisonSettings.ParseOverrides(["lora=fast"]));
    }

    [Fact]
    public void Validate_rejects_bad_method_lists_naming_the_option()
    {
        string dir = ComparisonFixtures.TempDir("cmp-settings");
        try
        {
            string data = ComparisonFixtures.WriteDataFile(dir);
            File.WriteAllText(Path.Combine(dir, "config.json"), "{}");
            var ok = new ComparisonSettings { ModelDir = dir, DataFile = data, OutputDir = dir };
            ok.Validate();
            Assert.Contains("listed twice", Assert.Throws<PeftException>(() => (ok with { Methods = ["lora", "lora"] }).Validate()).Message);
            Assert.Contains("--methods", Assert.Throws<PeftException>(() => (ok with { Methods = ["../x"] }).Validate()).Message);
            Assert.Contains("--methods", Assert.Throws<PeftException>(() => (ok with { Methods = [] }).Validate()).Message);
            Assert.Contains("--lr-override", Assert.Throws<PeftException>(() => (ok with { Methods = ["lora"], LearningRateOverrides = new Dictionary<string, double> { ["dora"] = 1e-3 } }).Validate()).Message);
            Assert.Contains("--data", Assert.Throws<PeftException>(() => (ok with { DataFile = Path.Combine(dir, "missing.jsonl") }).Validate()).Message);
            Assert.Contains("config.json", Assert.Throws<PeftException>(() => (ok with { ModelDir = Path.Combine(dir, "nomodel") }).Validate()).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Runs_of_one_method_differ_only_in_seed_and_folder_and_the_first_seed_keeps_the_method_folder()
    {
        var s = S() with { Seeds = 3 };
        Assert.Equal([42, 43, 44], s.SeedList);
        Assert.Equal(Path.Combine("out", "lora"), s.RunDir("lora", 42));
        Assert.Equal(Path.Combine("out", "lora.seed-43"), s.RunDir("lora", 43));
        Assert.Equal(s.TrainArguments("lora"), s.TrainArguments("lora", 42));
        var a = Flags(s.TrainArguments("lora", 42));
        var b = Flags(s.TrainArguments("lora", 44));
        Assert.Equal(new[] { "--output-dir", "--seed" }, a.Keys.Where(k => a[k] != b[k]).OrderBy(k => k).ToArray());
        Assert.Equal("44", b["--seed"]);
        string dir = ComparisonFixtures.TempDir("cmp-seeds");
        try
        {
            string data = ComparisonFixtures.WriteDataFile(dir);
            File.WriteAllText(Path.Combine(dir, "config.json"), "{}");
            var ok = new ComparisonSettings { ModelDir = dir, DataFile = data, OutputDir = dir };
            Assert.Contains("--seeds", Assert.Throws<PeftException>(() => (ok with { Seeds = 0 }).Validate()).Message);
            Assert.Contains("--seeds", Assert.Throws<PeftException>(() => (ok with { Seeds = ComparisonSettings.MaxSeeds + 1 }).Validate()).Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
