using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Planning;
using PeftSharp.Tensors;
using PeftSharp.Tests.IO;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Planning;

/// <summary>Exact parameter counts from a config, checked against models and adapters actually built.</summary>
public class ParameterCounterTests
{
    public static TheoryData<string> Variants => ["llama", "llama-tied", "qwen2", "qwen3", "llama-biases"];

    internal static ModelConfig Variant(string name) => name switch
    {
        "llama-tied" => TinyModels.Config(tied: true),
        "qwen2" => TinyModels.Config("qwen2"),
        "qwen3" => TinyModels.Config("qwen3", tied: true),
        "llama-biases" => TinyModels.Config() with { QkvBias = true, OutputBias = true, MlpBias = true },
        _ => TinyModels.Config(),
    };

    [Theory, MemberData(nameof(Variants))]
    public void TotalMatchesTheBuiltModel(string variant)
    {
        var c = Variant(variant);
        using var model = CausalLM.CreateRandom(c, DType.BF16, 1);
        Assert.Equal(model.NamedWeights().Sum(w => w.Tensor.ElementCount), ParameterCounter.TotalParameters(c));
    }

    [Theory]
    [InlineData("llama", "q_proj,v_proj", 4, false)]
    [InlineData("llama", "all-linear", 4, false)]
    [InlineData("qwen3", "all-linear", 8, true)]
    [InlineData("qwen2", "q_proj,v_proj", 2, true)]
    [InlineData("llama-tied", "k_proj,o_proj,down_proj", 3, false)]
    public void AdapterCountMatchesPeftModel(string variant, string targets, int rank, bool dora)
    {
        var c = Variant(variant);
        using var pm = new PeftModel(CausalLM.CreateRandom(c, DType.F32, 2), TestCompute.Cpu);
        var names = ParameterCounter.ParseTargets(targets);
        var config = targets == "all-linear"
            ? new LoraConfig { R = rank, LoraAlpha = 2 * rank, TargetModulesRegex = "all-linear", UseDora = dora }
            : new LoraConfig { R = rank, LoraAlpha = 2 * rank, TargetModules = names, UseDora = dora };
        pm.AddAdapter("a", config);
        var trainable = pm.TrainableParameters().ToList();
        Assert.Equal(trainable.Sum(p => p.Count), ParameterCounter.AdapterParameters(c, names, rank, dora));
        Assert.Equal(trainable.Select(p => p.Count).Order(), ParameterCounter.AdapterTensorSizes(c, names, rank, dora).Order());
    }

    [Fact]
    public void FullFineTuningTrainsEveryWeightTensor()
    {
        var c = Variant("llama-biases");
        using var model = CausalLM.CreateRandom(c, DType.F32, 3);
        model.MakeFullyTrainable();
        Assert.Equal(model.TrainableParameters().Select(p => p.Count).Order(), ParameterCounter.WeightTensorSizes(c).Order());
    }

    // Published totals (Hugging Face model cards / safetensors metadata) of the configs under assets/model-configs.
    [Theory]
    [InlineData("smollm2-135m.json", 134_515_008L)]
    [InlineData("tinyllama-1.1b.json", 1_100_048_384L)]
    [InlineData("qwen2.5-0.5b.json", 494_032_768L)]
    [InlineData("llama-3.2-1b.json", 1_235_814_400L)]
    [InlineData("mistral-7b-v0.1.json", 7_241_732_096L)]
    [InlineData("qwen3-0.6b.json", 596_049_920L)]
    [InlineData("llama-3-8b.json", 8_030_261_248L)]
    public void RealConfigsGiveThePublishedTotals(string file, long total) =>
        Assert.Equal(total, ParameterCounter.TotalParameters(ModelConfig.Load(IoTestPaths.ModelConfig(file))));

    [Fact]
    public void SmolLM2QvRank16IsR_TimesInPlusOut_PerLayer()
    {
        var c = ModelConfig.Load(IoTestPaths.ModelConfig("smollm2-135m.json"));
        // q (576×576): 16·1152; v (192×576): 16·768; 30 layers
        Assert.Equal(30L * 16 * (1152 + 768), ParameterCounter.AdapterParameters(c, ParameterCounter.AttentionQv, 16, false));
        Assert.Equal(30L * 16 * (1152 + 768) + 30 * (576 + 192), ParameterCounter.AdapterParameters(c, ParameterCounter.AttentionQv, 16, true));
    }

    [Theory]
    [InlineData("lm_head")]
    [InlineData("q_proj,qproj")]
    [InlineData(" , ")]
    public void BadTargetsNameTheOption(string targets)
    {
        var e = Assert.Throws<PeftException>(() => ParameterCounter.ParseTargets(targets));
        Assert.StartsWith("--targets:", e.Message);
    }

    [Fact]
    public void TargetsKeepModelOrder() =>
        Assert.Equal(["q_proj", "v_proj", "down_proj"], ParameterCounter.ParseTargets("down_proj, v_proj,q_proj"));
}
