using PeftSharp.Inspection;
using PeftSharp.Quantization;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;
using PeftSharp.Training;

namespace PeftSharp.Tests.QLoRA;

public class QLoraOptionsTests
{
    static TrainingOptions O(string method) => new() { ModelDir = "m", DataFile = "d", OutputDir = "o", Method = method };

    [Fact]
    public void Methods_QloraAndQdora_AreAccepted_WithBnbSettings()
    {
        O("qlora").Validate();
        O("qdora").Validate();
        Assert.True(O("qlora").IsQuantized);
        Assert.False(O("lora").IsQuantized);
        Assert.Equal(new QuantizeOptions(Quant4Type.NF4, true, 64), O("qlora").Quantize);
        Assert.Equal(new QuantizeOptions(Quant4Type.FP4, false, 64), (O("qdora") with { BnbQuantType = "fp4", BnbDoubleQuant = false }).Quantize);
        var e = Assert.Throws<PeftException>(() => (O("qlora") with { BnbQuantType = "int4" }).Validate());
        Assert.Contains("bnb_4bit_quant_type", e.Message);
        Assert.Contains("int4", e.Message);
        Assert.Throws<PeftException>(() => O("qlora8").Validate());
    }

    [Fact]
    public void Inspect_Reports4BitWeightsAtTheirStoredSize()
    {
        var c = QLoraTestModels.Config();
        var w = TinyModels.Weights(c, 2);
        using var m = QLoraTestModels.Quantized(c, w);
        var report = ModelReport.Of(m);
        var q = report.Groups.Single(g => g.Kind == "q_proj.weight");
        Assert.Equal("NF4+DQ", q.DTypes);
        Assert.Equal(c.NumLayers * 64L * 64, q.Parameters);
        Assert.Equal(m.QuantizedProjections().Where(p => p.Name.EndsWith("q_proj")).Sum(p => p.StorageBytes), q.Bytes);
        Assert.Equal("F32", report.Groups.Single(g => g.Kind == "embed_tokens.weight").DTypes);
        Assert.Equal(m.BaseParameterCount, report.TotalParameters);
        Assert.Throws<PeftException>(() => m.MakeFullyTrainable());
        foreach (var t in w.Values) t.Dispose();
    }
}

public class QuantizationConfigTests
{
    [Theory]
    [InlineData("{\"quant_method\":\"bitsandbytes\",\"load_in_8bit\":true}", "load_in_8bit")]
    [InlineData("{\"quant_method\":\"gptq\",\"bits\":4}", "gptq")]
    public void UnsupportedQuantizationConfig_IsRefusedByName(string qc, string expected)
    {
        var c = QLoraTestModels.Config();
        var w = TinyModels.Weights(c, 1);
        var dir = TinyModels.WriteFolder(c, w);
        try
        {
            var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
            json["quantization_config"] = System.Text.Json.Nodes.JsonNode.Parse(qc);
            File.WriteAllText(Path.Combine(dir, "config.json"), json.ToJsonString());
            var e = Assert.Throws<PeftException>(() => PeftSharp.Models.CausalLM.Load(dir));
            Assert.Contains(expected, e.Message);
            Assert.Contains("config.json", e.Message);
        }
        finally { Directory.Delete(dir, true); foreach (var t in w.Values) t.Dispose(); }
    }
}
