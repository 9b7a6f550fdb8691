using System.Text.Json;
using PeftSharp.Cli.Commands;
using PeftSharp.Models;
using PeftSharp.Planning;
using PeftSharp.Tests.IO;

namespace PeftSharp.Tests.Planning;

/// <summary>`peft calc` option handling and report content.</summary>
public class CalcCommandTests
{
    static CalcRequest Request(string? ranks = null, int? rank = null, string targets = "both", int batch = 4, int seq = 256,
        string optimizer = "adamw", string? budget = null) => CalcCommand.MakeRequest(ranks, rank, targets, batch, seq, optimizer, budget);

    [Theory]
    [InlineData("--ranks", "8,x")]
    [InlineData("--ranks", "8,,16")]
    [InlineData("--ranks", "0")]
    [InlineData("--budget", "24XB")]
    [InlineData("--targets", "lm_head")]
    [InlineData("--optimizer", "sgd")]
    [InlineData("--batch", "0")]
    [InlineData("--rank", "-1")]
    public void BadOptionsNameTheOption(string option, string value)
    {
        var e = Assert.Throws<PeftException>(() => option switch
        {
            "--ranks" => Request(ranks: value),
            "--budget" => Request(budget: value),
            "--targets" => Request(targets: value),
            "--optimizer" => Request(optimizer: value),
            "--batch" => Request(batch: int.Parse(value)),
            _ => Request(rank: int.Parse(value)),
        });
        Assert.StartsWith(option + ":", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void MissingConfigFailsWithExitCode1() =>
        Assert.Equal(1, new CalcCommand().Build().Parse(["/nonexistent/config.json"]).Invoke());

    [Fact]
    public void SquareModeRunsWithoutAConfig() =>
        Assert.Equal(0, new CalcCommand().Build().Parse(["--square", "--params", "25,4B", "--rank", "1"]).Invoke());

    [Fact]
    public void SquareModeNeedsParams() =>
        Assert.Equal(1, new CalcCommand().Build().Parse(["--square"]).Invoke());

    [Fact]
    public void BadBudgetFailsWithExitCode1() =>
        Assert.Equal(1, new CalcCommand().Build().Parse([IoTestPaths.ModelConfig("smollm2-135m.json"), "--budget", "24XB"]).Invoke());

    [Fact]
    public void ReportHasCountsEstimatesAndAdvice()
    {
        var path = IoTestPaths.ModelConfig("smollm2-135m.json");
        var report = new CalcReport(ModelConfig.Load(path), path, Request(budget: "24GB"));
        var text = report.ToText();
        Assert.Contains("134,515,008", text);
        Assert.Contains("ESTIMATE", text);
        Assert.Contains("recommendation: full", text);
        // q_proj,v_proj at r 16: 921,600 = 30·16·(1152 + 768), 0.6851 % of the model
        Assert.Contains("921,600   0.6851%", text);

        using var doc = JsonDocument.Parse(report.ToJson());
        var root = doc.RootElement;
        Assert.Equal(134_515_008, root.GetProperty("parameters").GetProperty("total").GetInt64());
        Assert.Equal(10, root.GetProperty("memory_estimates").GetArrayLength());
        Assert.Equal("full", root.GetProperty("advice").GetProperty("method").GetString());
        var qv16 = root.GetProperty("adapters").EnumerateArray().First(a => a.GetProperty("targets").GetString() == "q_proj,v_proj" && a.GetProperty("rank").GetInt32() == 16);
        Assert.Equal(921_600, qv16.GetProperty("lora").GetInt64());
    }

    [Fact]
    public void SquareJsonHasTheSeedNumbers()
    {
        using var doc = JsonDocument.Parse(CalcReport.SquareJson([4_000_000_000], [1]));
        var row = doc.RootElement.GetProperty("square")[0];
        Assert.Equal(63246, row.GetProperty("dimension").GetInt64());
        Assert.Equal(126492, row.GetProperty("lora_parameters").GetInt64());
        Assert.Equal("0.0032%", row.GetProperty("percent_text").GetString());
    }

    [Fact]
    public void Modules_to_save_copies_are_in_the_memory_rows()
    {
        var path = IoTestPaths.ModelConfig("smollm2-135m.json");
        var c = ModelConfig.Load(path);
        var plain = new CalcReport(c, path, new CalcRequest());
        var saved = new CalcReport(c, path, new CalcRequest { ModulesToSave = ["lm_head"] });
        long copy = (long)c.VocabSize * c.HiddenSize;   // one float32 copy of the tied embedding
        foreach (var (a, b) in plain.Memory.Zip(saved.Memory))
        {
            Assert.Equal(a.Method, b.Method);
            long extra = a.Method == "full" ? 0 : copy;   // full fine-tuning trains every weight already
            Assert.Equal(a.AdapterBytes + 4 * extra, b.AdapterBytes);
            Assert.Equal(a.GradientBytes + 4 * extra, b.GradientBytes);
            Assert.Equal(a.OptimizerBytes + 8 * extra, b.OptimizerBytes);   // AdamW: m and v in float32
            Assert.Equal(a.WeightsBytes, b.WeightsBytes);
        }
        Assert.Contains("modules_to_save lm_head (in the trainable, gradient and optimizer columns)", saved.ToText());
    }
}
