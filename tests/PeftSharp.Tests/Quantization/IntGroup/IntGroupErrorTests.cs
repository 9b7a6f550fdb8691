using System.Text.Json.Nodes;
using PeftSharp.Models;
using PeftSharp.Quantization.IntGroup;
using PeftSharp.Tensors;
using PeftSharp.Tests.QLoRA;

namespace PeftSharp.Tests.Quantization.IntGroup;

/// <summary>Malformed GPTQ/AWQ configs and tensors: PeftExceptions that name the file or tensor and the field.</summary>
public class IntGroupErrorTests
{
    const string Q = "model.layers.0.self_attn.q_proj";

    [Theory]
    [InlineData("{\"quant_method\":\"hqq\",\"nbits\":4}", "quant_method \"hqq\" is not supported")]
    [InlineData("{\"quant_method\":\"gptq\",\"bits\":3,\"group_size\":128}", "quantization_config.bits: 3-bit GPTQ")]
    [InlineData("{\"quant_method\":\"gptq\",\"group_size\":128}", "quantization_config.bits: missing")]
    [InlineData("{\"quant_method\":\"gptq\",\"bits\":\"four\"}", "quantization_config.bits: expected an integer")]
    [InlineData("{\"quant_method\":\"gptq\",\"bits\":4,\"group_size\":0}", "quantization_config.group_size: 0")]
    [InlineData("{\"quant_method\":\"gptq\",\"bits\":4,\"checkpoint_format\":\"marlin\"}", "quantization_config.checkpoint_format \"marlin\"")]
    [InlineData("{\"quant_method\":\"gptq\",\"bits\":4,\"desc_act\":\"yes\"}", "quantization_config.desc_act: expected true or false")]
    [InlineData("{\"quant_method\":\"gptq\",\"bits\":4,\"pack_dtype\":\"int16\"}", "quantization_config.pack_dtype \"int16\"")]
    [InlineData("{\"quant_method\":\"gptq\",\"bits\":4,\"lm_head\":true}", "quantization_config.lm_head true")]
    [InlineData("{\"quant_method\":\"gptq\",\"bits\":4,\"dynamic\":{\"-:.*down_proj\":{}}}", "quantization_config.dynamic")]
    [InlineData("{\"quant_method\":\"awq\",\"bits\":8,\"version\":\"gemm\"}", "quantization_config.bits: 8-bit AWQ")]
    [InlineData("{\"quant_method\":\"awq\",\"bits\":4,\"version\":\"gemv\"}", "quantization_config.version \"gemv\"")]
    [InlineData("{\"quant_method\":\"awq\",\"bits\":4,\"zero_point\":false}", "quantization_config.zero_point false")]
    public void BadQuantizationConfig_NamesTheFileAndField(string qc, string expected)
    {
        var e = Assert.Throws<PeftException>(() => IntGroupConfig.Parse(JsonNode.Parse(qc)!.AsObject(), "/m/config.json"));
        Assert.Contains(expected, e.Message);
        Assert.Contains("/m/config.json", e.Message);
    }

    [Fact]
    public void ConfigParsing_ReadsTheFieldsAndDefaults()
    {
        var g = IntGroupConfig.Parse(JsonNode.Parse("{\"quant_method\":\"gptq\",\"bits\":8,\"group_size\":-1,\"desc_act\":true,\"sym\":false,\"checkpoint_format\":\"gptq_v2\"}")!.AsObject(), "c")!;
        Assert.Equal(new IntGroupConfig("gptq", IntGroupPacking.GptqV2, 8, -1, true, false), g);
        var a = IntGroupConfig.Parse(JsonNode.Parse("{\"quant_method\":\"awq\",\"bits\":4,\"group_size\":64,\"zero_point\":true,\"version\":\"GEMM\"}")!.AsObject(), "c")!;
        Assert.Equal(new IntGroupConfig("awq", IntGroupPacking.AwqGemm, 4, 64, false, false), a);
        Assert.Null(IntGroupConfig.Parse(JsonNode.Parse("{\"quant_method\":\"bitsandbytes\",\"load_in_4bit\":true}")!.AsObject(), "c"));
        Assert.Equal(IntGroupPacking.GptqV1, IntGroupConfig.Parse(JsonNode.Parse("{\"quant_method\":\"gptq\",\"bits\":4}")!.AsObject(), "c")!.Packing);
    }

    static PeftException LoadFails(IntGroupConfig cfg, Action<PackedWeights> corrupt)
    {
        using var fx = IntGroupFixtures.Build(QLoraTestModels.Config(), cfg);
        corrupt(fx);
        return Assert.Throws<PeftException>(() => { using var m = fx.Model(); });
    }

    static void Replace(PackedWeights fx, string name, Tensor t)
    {
        fx.Checkpoint[name].Dispose();
        fx.Checkpoint[name] = t;
    }

    [Fact]
    public void QWeightOfTheWrongShape_NamesTheTensorAndTheExpectedPacking()
    {
        var e = LoadFails(IntGroupFixtures.Gptq(4, 16), fx => Replace(fx, Q + ".qweight", new Tensor(DType.I32, 16, 64)));
        Assert.Contains($"'{Q}.qweight' has shape [16, 64], expected [8, 64]", e.Message);
        Assert.Contains("GPTQ 4-bit", e.Message);
        var a = LoadFails(IntGroupFixtures.Awq(32), fx => Replace(fx, Q + ".qweight", new Tensor(DType.I32, 8, 64)));
        Assert.Contains($"'{Q}.qweight' has shape [8, 64], expected [64, 8]", a.Message);   // AWQ is [in, out/8]
    }

    [Fact]
    public void QWeightOfTheWrongDType_AndScalesOfTheWrongShape_AreNamed()
    {
        var e = LoadFails(IntGroupFixtures.Gptq(4, 16), fx => Replace(fx, Q + ".qweight", new Tensor(DType.F16, 8, 64)));
        Assert.Contains($"'{Q}.qweight' is F16; expected I32", e.Message);
        var s = LoadFails(IntGroupFixtures.Gptq(4, 16), fx => Replace(fx, Q + ".scales", new Tensor(DType.F16, 3, 64)));
        Assert.Contains($"'{Q}.scales' has shape [3, 64], expected [4, 64]", s.Message);
        var z = LoadFails(IntGroupFixtures.Gptq(4, 16), fx => { fx.Checkpoint[Q + ".qzeros"].Dispose(); fx.Checkpoint.Remove(Q + ".qzeros"); });
        Assert.Contains($"'{Q}.qzeros': missing", z.Message);
    }

    [Fact]
    public void GIdxOutOfRange_NamesTheEntry()
    {
        var e = LoadFails(IntGroupFixtures.Gptq(4, 16, descAct: true), fx => fx.Checkpoint[Q + ".g_idx"].Span<int>()[5] = 4);
        Assert.Contains($"'{Q}.g_idx': entry 5 is 4, outside the 4 groups [0, 3]", e.Message);
        var neg = LoadFails(IntGroupFixtures.Gptq(4, 16, descAct: true), fx => fx.Checkpoint[Q + ".g_idx"].Span<int>()[0] = -1);
        Assert.Contains("entry 0 is -1", neg.Message);
        var missing = LoadFails(IntGroupFixtures.Gptq(4, 16, descAct: true), fx => { fx.Checkpoint[Q + ".g_idx"].Dispose(); fx.Checkpoint.Remove(Q + ".g_idx"); });
        Assert.Contains($"'{Q}.g_idx': missing; quantization_config.desc_act is true", missing.Message);
    }

    [Fact]
    public void ShapesThatTheFormatCannotPack_AreRefused()
    {
        // AWQ groups must tile the input: in_features 64 with group_size 48
        var cfg = IntGroupFixtures.Awq(32);
        using var fx = IntGroupFixtures.Build(QLoraTestModels.Config(), cfg);
        var e = Assert.Throws<PeftException>(() => CausalLM.FromTensors(fx.Config, fx.Get, "ckpt", null, null, null, cfg with { GroupSize = 48 }));
        Assert.Contains($"'{Q}.qweight': in_features 64 is not a multiple of quantization_config.group_size 48", e.Message);
    }

    [Fact]
    public void PackedTensorsWithoutAConfig_AndAConfigWithoutPackedTensors_AreRefused()
    {
        using var fx = IntGroupFixtures.Build(QLoraTestModels.Config(), IntGroupFixtures.Gptq(4, 16));
        var e = Assert.Throws<PeftException>(() => CausalLM.FromTensors(fx.Config, fx.Get, "ckpt", null, null, null, null));
        Assert.Contains($"'{Q}.qweight' is a GPTQ/AWQ packed weight, but config.json has no quantization_config", e.Message);
        var dense = fx.Dense;
        var d = Assert.Throws<PeftException>(() => CausalLM.FromTensors(fx.Config, n => dense.GetValueOrDefault(n), "dir", null, null, null, fx.Packing));
        Assert.Contains("quantization_config.quant_method is \"gptq\", but no projection is stored packed", d.Message);
        Assert.Contains($"{Q}.qweight", d.Message);
    }

    [Fact]
    public void FolderWithAnUnknownQuantMethod_IsRefusedWhenLoading()
    {
        using var fx = IntGroupFixtures.Build(QLoraTestModels.Config(), IntGroupFixtures.Gptq(4, 16));
        var dir = fx.WriteFolder();
        try
        {
            var path = Path.Combine(dir, "config.json");
            var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            json["quantization_config"]!["quant_method"] = "eetq";
            File.WriteAllText(path, json.ToJsonString());
            var e = Assert.Throws<PeftException>(() => CausalLM.Load(dir));
            Assert.Contains("config.json: quantization_config.quant_method \"eetq\" is not supported", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
