using System.Text.Json.Nodes;
using PeftSharp.Models;
using PeftSharp.Planning;
using PeftSharp.Tests.IO;
using Xunit.Abstractions;

namespace PeftSharp.Tests.Planning;

/// <summary>
/// The estimate against peak RSS measured on the SmolLM2-135M shape (assets/model-configs/smollm2-135m.json):
/// must agree within 15 %. Measurements are committed JSON lines {"bench":"train","method":…,"peak_rss_mb":…} with
/// optional batch, seq, rank, targets, gradient_checkpointing, optimizer (defaults 4, 256, 16, all-linear, false, adamw).
/// </summary>
public class MemoryEstimatorMeasuredTests(ITestOutputHelper output)
{
    const double Tolerance = 0.15;

    static IEnumerable<JsonObject> Lines(string path) =>
        File.ReadLines(path).Where(l => l.TrimStart().StartsWith('{')).Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(o => (string?)o["bench"] == "train");

    static T Field<T>(JsonObject o, T fallback, params string[] keys)
    {
        foreach (var k in keys) if (o[k] is JsonValue v && v.TryGetValue<T>(out var x)) return x;
        return fallback;
    }

    List<string> Compare(string path)
    {
        var c = ModelConfig.Load(IoTestPaths.ModelConfig("smollm2-135m.json"));
        var report = new List<string>();
        int checkedLines = 0;
        foreach (var o in Lines(path))
        {
            string method = Field(o, "lora", "method");
            if (!MemoryEstimator.Methods.Contains(method)) continue;
            double measured = Field(o, double.NaN, "peak_rss_mb");
            Assert.False(double.IsNaN(measured), $"{path}: line without peak_rss_mb: {o.ToJsonString()}");
            var e = MemoryEstimator.Estimate(c, method, Field(o, 4, "batch", "batch_size"), Field(o, 256, "seq", "seq_len", "max_length"),
                Field(o, 16, "rank", "r"), Field(o, "all-linear", "targets", "target_modules"),
                Field(o, false, "gradient_checkpointing", "checkpointing"), Field(o, "adamw", "optimizer", "optim"));
            double estimated = e.TotalBytes / 1048576.0;
            double rel = Math.Abs(estimated - measured) / measured;
            report.Add($"{method} {e.Batch}×{e.Seq} ckpt={e.GradientCheckpointing}: estimate {estimated:F1} MiB, measured {measured:F1} MiB, {100 * rel:F1} %");
            Assert.True(rel <= Tolerance, $"{path}: estimate off by more than 15 %: {report[^1]}");
            output.WriteLine(report[^1]);
            checkedLines++;
        }
        Assert.True(checkedLines > 0, $"{path}: no {{\"bench\":\"train\"}} line with a known method");
        return report;
    }

    [Fact]
    public void Estimate_MatchesMeasuredBenchTrain_SmolLM2()
    {
        var path = IoTestPaths.Fixture("bench", "smollm2-135m-train.json");
        Assert.True(File.Exists(path),
            $"{path} is missing: run `peft bench train` on the SmolLM2-135M shape (assets/model-configs/smollm2-135m.json, " +
            "batch 4 × seq 256, r 16, alpha 32, all-linear) and commit its JSON output there; this test compares it with MemoryEstimator.");
        Compare(path);
    }

    /// <summary>Measured with tests/fixtures/bench/measure-train-rss.sh (`peft bench train`, one process per line).</summary>
    [Fact]
    public void Estimate_MatchesMeasuredHarness_SmolLM2() =>
        Compare(IoTestPaths.Fixture("bench", "smollm2-135m-train-harness.jsonl"));
}
