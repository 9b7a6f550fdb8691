using PeftSharp.Cli.Training;
using PeftSharp.Training;

namespace PeftSharp.Tests.Training;

/// <summary>Run-config YAML inputs found by fuzzing (fuzz/findings/yaml crashes id:000000 and id:000001): each is a
/// PeftException naming the file, not an InvalidOperationException or InvalidCastException.</summary>
public class YamlFuzzFindingTests
{
    [Theory]
    [InlineData("r: 4\nlora_Dlpha: 8\ntarget_modules: [q_prlpha: 8\ntargoJ, v_proj]\nmax_stepe: 2\n")]
    [InlineData("r: 48\ntarget_modules: [q_proj,les: \u00ffoj]\nmax_steps:q_proj,les: \u00ffoj]\n 2")]
    [InlineData("{a: 1}: 2\n")]
    [InlineData("target_modules: [[q_proj]]\n")]
    public void MalformedYamlIsANamedError(string yaml)
    {
        string path = Path.Combine(TestSupport.TinyRun.Temp("yaml"), "run.yaml");
        File.WriteAllText(path, yaml);
        var e = Assert.Throws<PeftException>(() => TrainSettings.ApplyYaml(new TrainRequest(new TrainingOptions { ModelDir = "m", DataFile = "d", OutputDir = "o" }), path));
        Assert.Contains("run.yaml", e.Message);
    }

    /// <summary>Session 2's finding (fuzz/findings/yaml crash id:000000, 50 bytes): YamlDotNet's YamlStream threw
    /// ArgumentException ("The current event is of an unsupported type") on this input.</summary>
    [Fact]
    public void UnsupportedYamlEventIsANamedError()
    {
        string path = Path.Combine(TestSupport.TinyRun.Temp("yaml"), "run.yaml");
        File.WriteAllBytes(path, Convert.FromHexString("203a20340a6c6f72615f616c657761726765745f6d6f64756c65733a205b6f6a585d6f585d166d61613a20380a747fffffff"));
        var e = Assert.Throws<PeftException>(() => TrainSettings.ApplyYaml(new TrainRequest(new TrainingOptions { ModelDir = "m", DataFile = "d", OutputDir = "o" }), path));
        Assert.Contains("run.yaml", e.Message);
        Assert.Contains("invalid YAML", e.Message);
    }
}
