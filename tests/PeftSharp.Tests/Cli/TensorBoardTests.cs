using System.Text;
using System.Text.Json;
using PeftSharp.Cli.Training;

namespace PeftSharp.Tests.Cli;

/// <summary>TensorBoard event files, read back by Google's protobuf runtime and crcmod (see <see cref="TfEventsReader"/>).</summary>
public class TensorBoardTests
{
    [Fact]
    public void Crc32C_matches_the_published_check_value() =>
        Assert.Equal(0xE3069283u, TfEventsWriter.Crc32C(Encoding.ASCII.GetBytes("123456789")));

    [Fact]
    public void Event_file_decodes_with_an_independent_protobuf_and_crc32c()
    {
        string dir = PeftProcess.TempDir("tfev");
        try
        {
            string path;
            var t0 = new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);
            using (var w = new TfEventsWriter(dir, t0))
            {
                path = w.Path;
                w.Scalar("train/loss", 2.5, 1, t0.AddSeconds(1));
                w.Scalar("train/learning_rate", 3e-3, 1, t0.AddSeconds(1));
                w.Scalar("eval/loss", 1.25, 300, t0.AddSeconds(2.5));
            }
            Assert.StartsWith("events.out.tfevents.", Path.GetFileName(path));
            var entries = TfEventsReader.Read(path);
            Assert.Equal("brain.Event:2", entries[0].FileVersion);
            Assert.Equal(t0.ToUnixTimeSeconds(), entries[0].WallTime);
            Assert.Equal([("train/loss", 1L, 2.5), ("train/learning_rate", 1L, (double)3e-3f), ("eval/loss", 300L, 1.25)],
                entries.Skip(1).Select(e => (e.Tag!, e.Step, e.Value)));
            Assert.Equal(t0.ToUnixTimeSeconds() + 2.5, entries[3].WallTime);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Train_with_report_to_tensorboard_logs_the_same_losses_as_metrics_jsonl()
    {
        string dir = PeftProcess.TempDir("tb-train");
        try
        {
            string data = PeftProcess.DemoLikeData(dir, 12);
            var (code, stdout, stderr) = PeftProcess.Run(["train", "--model", PeftProcess.DefaultModel, "--data", data, "--max-steps", "3",
                "--per-device-train-batch-size", "2", "--max-seq-length", "32", "--task-eval", "0", "--eval-steps", "2", "--output-dir", "out",
                "--report-to", "tensorboard", "--threads", "1"], workingDir: dir);
            Assert.True(code == 0, stdout + stderr);
            var file = Assert.Single(Directory.GetFiles(Path.Combine(dir, "out", "runs"), "events.out.tfevents.*"));
            var entries = TfEventsReader.Read(file);
            var metrics = File.ReadAllLines(Path.Combine(dir, "out", "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
                .Where(e => e.TryGetProperty("loss", out _)).ToList();
            var tbLoss = entries.Where(e => e.Tag == "train/loss").ToList();
            Assert.Equal(metrics.Select(m => m.GetProperty("step").GetInt64()), tbLoss.Select(e => e.Step));
            // metrics.jsonl rounds to 6 decimals, the event file holds float32: equal to that precision.
            foreach (var (m, e) in metrics.Zip(tbLoss)) Assert.Equal(m.GetProperty("loss").GetDouble(), e.Value, 1e-5);
            Assert.Contains(entries, e => e.Tag == "eval/loss" && e.Step == 2);
            Assert.Contains(entries, e => e.Tag == "train/learning_rate");
        }
        finally { Directory.Delete(dir, true); }
    }
}
