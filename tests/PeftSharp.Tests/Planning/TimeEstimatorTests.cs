using System.Text.Json;
using PeftSharp.Cli.Planning;
using PeftSharp.Models;
using PeftSharp.Planning;
using PeftSharp.Tests.IO;

namespace PeftSharp.Tests.Planning;

/// <summary>`peft calc`'s time estimate: FLOPs per step counted by hand for a tiny config, the report section, and the
/// probe's rates (positive; their values are machine-dependent and not asserted).</summary>
public class TimeEstimatorTests
{
    // hidden 32, intermediate 64, 1 layer, 4 heads of 8, 2 kv heads, vocab 100.
    static readonly ModelConfig Tiny = ModelConfig.Parse("""
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 100, "hidden_size": 32,
         "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
         "max_position_embeddings": 128, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": true,
         "bos_token_id": 0, "eos_token_id": 1, "hidden_act": "silu", "torch_dtype": "float32"}
        """, "tiny config");

    static readonly MachineThroughput Machine = new(1e6, 1e4, "test", 0);

    static TimeEstimate E(string method, bool ckpt = false) => TimeEstimator.Estimate(Tiny, method, 2, 8, 4, "all-linear", ckpt, Machine);

    [Fact]
    public void Flops_per_step_follow_the_hand_count()
    {
        // n = 16 tokens. Projections 1024 + 512 + 512 + 1024 + 3·2048 = 9216 weights; head 100·32 = 3200;
        // attention 2·16·8·32 = 8192. Blocks' forward 2·16·9216 + 8192 = 303,104; forward + head 2·16·3200 = 405,504.
        Assert.Equal(3 * 405_504, E("full").Flops, 6);
        // LoRA r 4: adapters 4·(64 + 48 + 48 + 64 + 96 + 96 + 96) = 2048; 2·405,504 + 8192 + 6·16·2048.
        Assert.Equal(1_015_808, E("lora").Flops, 6);
        // DoRA adds m = 256 and re-forms the norms: 2·(2·4 + 3)·9216.
        Assert.Equal(811_008 + 8192 + 6 * 16 * 2304 + 2 * 11 * 9216, E("dora").Flops, 6);
        // QLoRA with checkpointing: LoRA plus the blocks' forward; every projection dequantized three times.
        var q = E("qlora", ckpt: true);
        Assert.Equal(1_015_808 + 303_104, q.Flops, 6);
        Assert.Equal(3 * 9216, q.DequantizedWeights);
        Assert.Equal(1.318912 + 2.7648, q.SecondsPerStep, 9);
        Assert.Equal(16 / q.SecondsPerStep, q.TokensPerSecond, 9);
        Assert.Equal(0, E("lora").DequantizedWeights);
    }

    [Fact]
    public void Bad_inputs_name_what_is_wrong()
    {
        Assert.Contains("method", Assert.Throws<PeftException>(() => TimeEstimator.Estimate(Tiny, "adalora", 1, 8, 4, "all-linear", false, Machine)).Message);
        Assert.Contains("rate", Assert.Throws<PeftException>(() => TimeEstimator.Estimate(Tiny, "lora", 1, 8, 4, "all-linear", false, Machine with { GemmFlopsPerSecond = 0 })).Message);
    }

    [Fact]
    public void Calc_report_shows_the_time_estimate_as_an_estimate_in_text_and_json()
    {
        var path = IoTestPaths.ModelConfig("smollm2-135m.json");
        var config = ModelConfig.Load(path);
        var report = new CalcReport(config, path, new CalcRequest { Steps = 500 }, new MachineThroughput(5e10, 2e9, "probe text", 0.9));
        string text = report.ToText();
        Assert.Contains("Time ESTIMATE per optimizer step (an estimate, not a measurement of training)", text);
        Assert.Contains("from a 0.9 s probe of this machine: probe text", text);
        Assert.Contains("est. 500 steps", text);
        using var doc = JsonDocument.Parse(report.ToJson());
        var t = doc.RootElement.GetProperty("time_estimates");
        Assert.Equal(10, t.GetProperty("methods").GetArrayLength());
        var lora = t.GetProperty("methods").EnumerateArray().First(m => m.GetProperty("method").GetString() == "lora");
        Assert.Equal(500 * lora.GetProperty("seconds_per_step").GetDouble(), lora.GetProperty("seconds_for_steps").GetDouble(), 9);
        Assert.DoesNotContain("time_estimates", new CalcReport(config, path, new CalcRequest()).ToJson());
        Assert.Equal("3 min 5 s", CalcReport.Duration(185));
        Assert.Equal("2 h 10 min", CalcReport.Duration(7800));
    }

    [Fact]
    public void Probe_measures_positive_rates_on_the_model_shape()
    {
        using var one = TestSupport.TestCompute.With(new PeftSharp.Compute.ComputeOptions { Threads = 1 });
        var m = ThroughputProbe.Measure(one, Tiny);
        Assert.True(m.GemmFlopsPerSecond > 0 && double.IsFinite(m.GemmFlopsPerSecond));
        Assert.True(m.DequantWeightsPerSecond > 0 && double.IsFinite(m.DequantWeightsPerSecond));
        Assert.Contains("W [64×32]", m.Description);
    }
}
