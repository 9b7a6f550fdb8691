using PeftSharp.Tests.Cli;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Gemma;

/// <summary>The `peft` commands on a gemma2 model folder, as a user runs them: compare (LoRA and QDoRA, real child
/// processes), then generate, score and merge with the adapter it saved, and calc on the config.</summary>
public class GemmaCliTests
{
    static string Ok((int Code, string Stdout, string Stderr) r, string what)
    {
        Assert.True(r.Code == 0, $"{what}: exit {r.Code}\n{r.Stdout}\n{r.Stderr}");
        return r.Stdout;
    }

    [Fact]
    public void Compare_generate_score_merge_and_calc_run_on_a_gemma2_folder()
    {
        var model = TinyRun.ModelDir("gemma2");
        var data = TinyRun.Data(24);
        var output = PeftProcess.TempDir("gemma-cli");
        try
        {
            string yaml = Path.Combine(output, "train.yaml");
            File.WriteAllText(yaml, "max_length: 64\nper_device_train_batch_size: 2\n");
            Ok(PeftProcess.Run(["compare", "--model", model, "--data", data, "--config", yaml, "--methods", "lora,qdora", "--max-steps", "2",
                "--task-eval", "0", "--threads", "1", "--output-dir", output]), "compare");
            foreach (var m in new[] { "lora", "qdora" }) Assert.True(File.Exists(Path.Combine(output, m, "summary.json")), m);
            var adapter = Directory.GetFiles(Path.Combine(output, "lora"), "adapter_config.json", SearchOption.AllDirectories).First();
            var adapterDir = Path.GetDirectoryName(adapter)!;

            var gen = Ok(PeftProcess.Run(["generate", model, "--adapter", adapterDir, "--prompt", "alpha beta ->", "--max-new-tokens", "4", "--threads", "1"]), "generate");
            Assert.StartsWith("alpha beta ->", gen);
            var score = Ok(PeftProcess.Run(["score", model, "--adapter", adapterDir, "--text", "red green blue", "--threads", "1"]), "score");
            Assert.Contains("\"perplexity\"", score);
            var merged = Path.Combine(output, "merged");
            Ok(PeftProcess.Run(["merge", model, "--adapter", adapterDir, "--out", merged, "--threads", "1"]), "merge");
            Assert.Contains("\"gemma2\"", File.ReadAllText(Path.Combine(merged, "config.json")));
            var mergedScore = Ok(PeftProcess.Run(["score", merged, "--text", "red green blue", "--threads", "1"]), "score merged");
            Assert.Contains("\"perplexity\"", mergedScore);

            var calc = Ok(PeftProcess.Run(["calc", Path.Combine(model, "config.json")]), "calc");
            Assert.Contains("gemma2", calc);
            Assert.Contains("gemma: (1 + w) norms, GeGLU", Ok(PeftProcess.Run(["inspect", model]), "inspect"));
        }
        finally
        {
            foreach (var d in new[] { model, Path.GetDirectoryName(data)!, output }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }
}
