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
