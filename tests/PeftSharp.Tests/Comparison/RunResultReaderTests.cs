using PeftSharp.Cli.Comparison;

namespace PeftSharp.Tests.Comparison;

public class RunResultReaderTests
{
    [Fact]
    public void Reads_the_trainer_summary_curves_task_metric_and_adapter_size()
    {
        string dir = ComparisonFixtures.TempDir("cmp-read");
        try
        {
            ComparisonFixtures.WriteFinishedRun(dir, finalLoss: 2.25, peakRssMb: 321.5);
            var r = RunResultReader.Read("lora", dir, MethodStatus.Trained, 2e-4);
            Assert.Equal(3, r.Steps);
            Assert.Equal(2.25, r.FinalTrainLoss);
            Assert.Equal(321.5, r.PeakRssMib);
            Assert.Equal(40_000, r.FrozenWeightBytes);
            Assert.Equal(500, r.TrainableParameters);
            Assert.Equal(100.0 * 500 / 10_500, r.TrainablePercent!.Value, 12);
            Assert.Equal(1500, r.TokensPerSecond);
            Assert.Equal(4.5, r.WallSeconds);
            Assert.Equal(3.0, r.EvalLossBefore);
            Assert.Equal(2.6, r.EvalLoss);
            Assert.Equal(Math.Exp(2.6), r.EvalPerplexity!.Value, 12);
            Assert.Equal(0.25, r.ExactMatchBefore);
            Assert.Equal(0.5, r.ExactMatch);
            Assert.Equal(1002, r.SavedBytes);   // 1000-byte weights + "{}"
            Assert.Equal([1, 2, 3], r.TrainLoss.Select(p => p.Step));
            Assert.Equal([3.1, 2.8, 2.25], r.TrainLoss.Select(p => p.Value));
            Assert.Equal([0, 3], r.EvalLossCurve.Select(p => p.Step));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_half_written_metrics_line_is_skipped_and_a_broken_summary_names_the_file()
    {
        string dir = ComparisonFixtures.TempDir("cmp-read-bad");
        try
        {
            File.WriteAllText(Path.Combine(dir, "metrics.jsonl"), "{\"step\":1,\"loss\":3.5}\n\n{\"step\":2,\"loss\":3.");
            var (train, eval) = RunResultReader.ReadCurves(Path.Combine(dir, "metrics.jsonl"));
            Assert.Equal([new CurvePoint(1, 3.5)], train);
            Assert.Empty(eval);
            File.WriteAllText(Path.Combine(dir, "summary.json"), "{ not json");
            var e = Assert.Throws<PeftException>(() => RunResultReader.Read("lora", dir, MethodStatus.Reused, 2e-4));
            Assert.Contains("summary.json", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
