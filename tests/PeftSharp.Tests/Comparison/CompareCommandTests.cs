using System.Diagnostics;
using System.Text.Json;

namespace PeftSharp.Tests.Comparison;

/// <summary>`peft compare` end to end on a tiny random model: real child processes for each method, an unknown method
/// reported as failed, and a second invocation that reuses the finished method.</summary>
public class CompareCommandTests
{
    static (int Code, string Output) Peft(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "peft.dll");
        Assert.True(File.Exists(dll), $"{dll} missing (the test project references PeftSharp.Cli)");
        var psi = new ProcessStartInfo(Environment.ProcessPath!.EndsWith("dotnet") ? Environment.ProcessPath : "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }

    [Fact]
    public void Compare_runs_methods_in_child_processes_reports_failures_and_continues_finished_runs()
    {
        string dir = ComparisonFixtures.TempDir("cmp-e2e");
        try
        {
            string data = ComparisonFixtures.WriteDataFile(dir);
            string model = ComparisonFixtures.WriteTinyModel(dir, data);
            string output = Path.Combine(dir, "out");
            string yaml = Path.Combine(dir, "train.yaml");   // further settings go to every method through --config
            File.WriteAllText(yaml, "max_length: 64\nper_device_train_batch_size: 2\n");
            string[] args = ["compare", "--model", model, "--data", data, "--config", yaml, "--methods", "lora,nosuch", "--max-steps", "2",
                "--task-eval", "0", "--threads", "1", "--output-dir", output];

            var (code, text) = Peft(args);
            Assert.True(code == 2, $"exit code {code} (2 = a method failed):\n{text}");
            Assert.Contains("[1/2] lora: training", text);
            Assert.Contains("nosuch: FAILED — error: method \"nosuch\" is not supported", text);
            foreach (var f in new[] { "report.md", "report.json", "report.html" }) Assert.True(File.Exists(Path.Combine(output, f)), f);
            Assert.True(File.Exists(Path.Combine(output, "lora", "summary.json")), text);
            Assert.Contains("--method lora", File.ReadAllText(Path.Combine(output, "lora", "train.log")));

            using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "report.json"))))
            {
                var lora = doc.RootElement.GetProperty("results")[0];
                Assert.Equal("trained", lora.GetProperty("status").GetString());
                Assert.Equal(2, lora.GetProperty("steps").GetInt32());
                Assert.True(lora.GetProperty("peak_rss_mib").GetDouble() > 0);
                Assert.True(lora.GetProperty("trainable_parameters").GetInt64() > 0);
                Assert.True(lora.GetProperty("saved_bytes").GetInt64() > 0);
                Assert.Equal(2, lora.GetProperty("train_loss").GetArrayLength());
                Assert.True(double.IsFinite(lora.GetProperty("eval_loss").GetDouble()));
                var failed = doc.RootElement.GetProperty("results")[1];
                Assert.Equal("failed", failed.GetProperty("status").GetString());
            }
            var summaryTime = File.GetLastWriteTimeUtc(Path.Combine(output, "lora", "summary.json"));

            // Second invocation: lora finished, so it is not trained again.
            var (code2, text2) = Peft(args);
            Assert.True(code2 == 2, text2);
            Assert.Contains("[1/2] lora: finished earlier, not run again", text2);
            Assert.Equal(summaryTime, File.GetLastWriteTimeUtc(Path.Combine(output, "lora", "summary.json")));
            Assert.Contains("| lora | reused |", File.ReadAllText(Path.Combine(output, "report.md")));

            // --seeds 2: seed 42 is the finished run above, seed 43 trains into lora.seed-43; the report gives mean ± spread.
            var (code3, text3) = Peft([.. args, "--seeds", "2"]);
            Assert.True(code3 == 2, text3);
            Assert.Contains("[1/4] lora (seed 42): finished earlier, not run again", text3);
            Assert.Contains("[3/4] lora (seed 43): training", text3);
            Assert.True(File.Exists(Path.Combine(output, "lora.seed-43", "summary.json")), text3);
            Assert.Contains("2 seeds (42, 43) per method", text3);
            using var seeded = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "report.json")));
            var mean = seeded.RootElement.GetProperty("results")[0];
            Assert.Equal([42, 43], mean.GetProperty("seeds").EnumerateArray().Select(e => e.GetInt32()));
            Assert.Equal(JsonValueKind.Object, mean.GetProperty("spread").ValueKind);
            Assert.Equal(4, seeded.RootElement.GetProperty("runs").GetArrayLength());
        }
        finally { Directory.Delete(dir, true); }
    }
}
