using PeftSharp.Cli.Comparison;
using PeftSharp.Cli.Training;
using PeftSharp.Training;

namespace PeftSharp.Tests.Cli;

/// <summary>`--init-lora-weights loftq --loftq-iter N` (flags and YAML) and `peft compare`'s loftq method.</summary>
public class LoftQCliTests
{
    static TrainRequest Empty => new(new TrainingOptions { ModelDir = "", DataFile = "", OutputDir = "" });

    static string Yaml(string text)
    {
        string path = Path.Combine(Path.GetTempPath(), $"peft-loftq-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Init_loftq_brings_PEFTs_default_loftq_config_and_loftq_iter_sets_it_in_either_order()
    {
        var yaml = Yaml("init_lora_weights: loftq\n");
        Assert.Equal(1, TrainSettings.ApplyYaml(Empty, yaml).Options.Lora.LoftqConfig!.LoftqIter);
        File.WriteAllText(yaml, "loftq_iter: 4\ninit_lora_weights: LoftQ\n");
        var o = TrainSettings.ApplyYaml(Empty, yaml).Options;
        Assert.Equal("loftq", o.Lora.InitLoraWeights);
        Assert.Equal(4, o.Lora.LoftqConfig!.LoftqIter);
        Assert.Equal(4, o.Lora.LoftqConfig.LoftqBits);
        File.WriteAllText(yaml, "init_lora_weights: loftq\nloftq_iter: 3\n");
        Assert.Equal(3, TrainSettings.ApplyYaml(Empty, yaml).Options.Lora.LoftqConfig!.LoftqIter);
        // A later init (a flag over the YAML) drops the default loftq_config again; an explicit loftq_iter stays and is refused.
        File.Delete(yaml);
        var later = TrainSettings.Apply(TrainSettings.Apply(Empty.Options.Lora, "init_lora_weights", "loftq"), "init_lora_weights", "pissa");
        Assert.Null(later.LoftqConfig);
        var stray = TrainSettings.Apply(Empty.Options.Lora, "loftq_iter", "2");
        Assert.Contains("loftq_iter is set", Assert.Throws<PeftException>(() => (Empty.Options with { Lora = stray, ModelDir = "m", DataFile = "d", OutputDir = "o" }).Validate()).Message);
        Assert.Contains("expects an integer", Assert.Throws<PeftException>(() => TrainSettings.Apply(Empty.Options.Lora, "loftq_iter", "many")).Message);
    }

    [Fact]
    public void Compare_runs_loftq_as_qlora_initialized_by_loftq_and_otherwise_like_qlora()
    {
        var s = new ComparisonSettings { ModelDir = "m", DataFile = "d.jsonl", OutputDir = "out", Threads = 2, LoftqIter = 3 };
        var loftq = s.TrainArguments("loftq").ToList();
        var qlora = s.TrainArguments("qlora").ToList();
        Assert.Equal("qlora", loftq[loftq.IndexOf("--method") + 1]);
        Assert.Equal(Path.Combine("out", "loftq"), loftq[loftq.IndexOf("--output-dir") + 1]);
        Assert.Equal("loftq", loftq[loftq.IndexOf("--init-lora-weights") + 1]);
        Assert.Equal("3", loftq[loftq.IndexOf("--loftq-iter") + 1]);
        Assert.DoesNotContain("--init-lora-weights", qlora);
        // the same run as qlora but for its folder and the LoftQ flags
        var rest = loftq.Where((a, i) => i < loftq.IndexOf("--init-lora-weights")).ToList();
        rest[rest.IndexOf("--output-dir") + 1] = Path.Combine("out", "qlora");
        Assert.Equal(qlora, rest);
        Assert.Contains("--loftq-iter", Assert.Throws<PeftException>(() => (s with { LoftqIter = 0 }).Validate()).Message);
    }
}
