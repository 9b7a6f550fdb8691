using System.Text.Json;
using System.Text.Json.Nodes;
using PeftSharp.Models;
using PeftSharp.Tests.Cli;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Quantization.IntGroup;

/// <summary>The `peft` commands over GPTQ/AWQ copies of the default model (its real pretrained weights, RTN-packed).</summary>
public class IntGroupCliTests
{
    [Fact]
    public void Gptq_InspectTrainMergeCalc_EndToEnd()
    {
        var packing = IntGroupFixtures.Gptq(4, 64, descAct: false, sym: true);
        string model = IntGroupFixtures.PackFolder(PeftProcess.DefaultModel, packing);
        string dir = PeftProcess.TempDir("gptq-cli");
        try
        {
            var (code, stdout, stderr) = PeftProcess.Run(["inspect", model]);
            Assert.True(code == 0, stdout + stderr);
            Assert.Contains("quantization  28 linear projections in GPTQ 4-bit, group 64, sym (checkpoint format gptq", stdout);
            Assert.Contains("GPTQ4-g64", stdout);
            (code, stdout, stderr) = PeftProcess.Run(["inspect", model, "--json"]);
            Assert.True(code == 0, stdout + stderr);
            var q = JsonNode.Parse(stdout)!["quantization"]!;
            Assert.Equal("gptq", (string?)q["method"]);
            Assert.Equal(64, (int)q["group_size"]!);
            Assert.InRange((double)q["bits_per_parameter"]!, 4.3, 4.5);   // 4 + fp16 scale and 4-bit zero per 64 + g_idx

            string data = PeftProcess.DemoLikeData(dir, 12);
            (code, stdout, stderr) = PeftProcess.Run(["train", "--model", model, "--data", data, "--method", "dora", "--max-steps", "2",
                "--per-device-train-batch-size", "2", "--max-seq-length", "32", "--task-eval", "0", "--output-dir", "out", "--threads", "1"], workingDir: dir);
            Assert.True(code == 0, stdout + stderr);
            Assert.Contains("GPTQ 4-bit", stdout + stderr);
            string adapter = Path.Combine(dir, "out", "adapter");
            Assert.True(File.Exists(Path.Combine(adapter, "adapter_config.json")), "the run writes its adapter");

            string merged = Path.Combine(dir, "merged");
            (code, stdout, stderr) = PeftProcess.Run(["merge", model, "--adapter", adapter, "--out", merged, "--threads", "1"]);
            Assert.True(code == 0, stdout + stderr);
            Assert.Contains("into the dequantized GPTQ base", stdout);
            using (var m = CausalLM.Load(merged))
            {
                Assert.Null(m.GroupQuantization);
                Assert.Equal(PeftSharp.Tensors.DType.BF16, CausalLM.BaseLinear(m.Layers[0].Projections.First()).Weight.DType);
            }
            (code, stdout, stderr) = PeftProcess.Run(["merge", model, "--adapter", adapter, "--out", merged + "-4bit", "--into", "4bit"]);
            Assert.Equal(1, code);
            Assert.Contains("merges into BF16 only", stderr);

            (code, stdout, stderr) = PeftProcess.Run(["calc", model, "--no-time", "--json"]);
            Assert.True(code == 0, stdout + stderr);
            var calc = JsonDocument.Parse(stdout).RootElement;
            Assert.Equal("gptq", calc.GetProperty("packed_base").GetProperty("method").GetString());
            Assert.Equal(["lora", "dora"], calc.GetProperty("memory_estimates").EnumerateArray().Select(e => e.GetProperty("method").GetString()).Distinct());

            (code, stdout, stderr) = PeftProcess.Run(["quantize", model, "--out", Path.Combine(dir, "nf4")]);
            Assert.Equal(1, code);
            Assert.Contains("already packed", stderr);
        }
        finally
        {
            Directory.Delete(dir, true);
            Directory.Delete(model, true);
        }
    }

    [Fact]
    public void Awq_ScoreAndGenerate_CloseToTheBf16Model()
    {
        string model = IntGroupFixtures.PackFolder(PeftProcess.DefaultModel, IntGroupFixtures.Awq(64));
        try
        {
            var (code, stdout, stderr) = PeftProcess.Run(["score", model, "--text", "In the beginning God created the heaven and the earth.", "--threads", "1"]);
            Assert.True(code == 0, stdout + stderr);
            double awq = JsonNode.Parse(stdout)!["total"]!.GetValue<double>();
            (code, stdout, stderr) = PeftProcess.Run(["score", PeftProcess.DefaultModel, "--text", "In the beginning God created the heaven and the earth.", "--threads", "1"]);
            Assert.True(code == 0, stdout + stderr);
            double bf16 = JsonNode.Parse(stdout)!["total"]!.GetValue<double>();
            // 4-bit RTN of a small model moves the log-likelihood a little, not wholesale
            Assert.True(awq < 0 && Math.Abs(awq - bf16) < 0.25 * Math.Abs(bf16), $"AWQ total log p {awq} vs BF16 {bf16}");
            (code, stdout, stderr) = PeftProcess.Run(["generate", model, "--prompt", "In the beginning", "--max-new-tokens", "6", "--threads", "1"]);
            Assert.True(code == 0, stdout + stderr);
            Assert.False(string.IsNullOrWhiteSpace(stdout));
        }
        finally { Directory.Delete(model, true); }
    }
}
