using PeftSharp.Tests.TestSupport;
using PeftSharp.Export;
using PeftSharp.IO.Gguf;
using PeftSharp.Models;
using PeftSharp.Peft;
using Xunit.Abstractions;

namespace PeftSharp.Tests.Gguf;

/// <summary>
/// F16 / BF16 / Q8_0 exports: PeftSharp imports the same file (so both engines use identical rounded weights) and its
/// logits are compared with llama.cpp's. What remains is llama.cpp's own activation rounding: on the CPU ggml converts
/// the activations to the weight's "vec_dot" type before each matrix product — F16 (11-bit significand, 2^-11 relative
/// rounding), BF16 (8 bits, 2^-8) or Q8_0 (8-bit codes per 32 values, up to 1/254 of the block's largest value). With
/// 2 layers × 7 products plus the LM head, the expected relative logit errors are about 1e-3 (F16) and 1e-2 (BF16, Q8_0).
/// Measured: F16 4.4e-4 / 5.2e-4, BF16 3.5e-3 / 4.4e-3, Q8_0 1.4e-2 / 2.0e-2. The bounds (3e-3, 3e-2, 5e-2) leave a
/// margin over those and stay far below the ~0.3 that a wrong layout (e.g. unpermuted q/k rows) gives.
/// </summary>
public class GgufQuantizedExportTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("llama", "f16", 3e-3)]
    [InlineData("qwen3", "f16", 3e-3)]
    [InlineData("llama", "bf16", 3e-2)]
    [InlineData("qwen2", "bf16", 3e-2)]
    [InlineData("llama", "q8_0", 5e-2)]
    [InlineData("qwen3", "q8_0", 5e-2)]
    [InlineData("phi3", "f16", 3e-3)]
    [InlineData("phi3", "q8_0", 5e-2)]
    public void ExportImportedByPeftSharpMatchesLlamaCpp(string type, string ggmlType, double bound)
    {
        var c = GgufTestModels.Config(type, 2048);
        var dir = GgufTestModels.Folder(c, GgufTestModels.DefaultModel);
        var gguf = Path.Combine(dir, $"model-{ggmlType}.gguf");
        using (var model = CausalLM.Load(dir))
            GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgufModelExporter.ParseType(ggmlType));
        using var imported = CausalLM.Load(gguf);
        Assert.Equal(c with { TorchDtype = imported.Config.TorchDtype, BosTokenId = imported.Config.BosTokenId, EosTokenIds = imported.Config.EosTokenIds }, imported.Config);
        var ids = GgufLlamaCppAdapterTests.Ids(c.VocabSize);
        var ours = GgufLlamaCppAdapterTests.Rows(Passes.Logits(imported, ids), ids.Length, c.VocabSize);
        double err = GgufTestModels.RelativeError(LlamaCpp.Logits(gguf, ids), ours);
        output.WriteLine($"{type} {ggmlType}: llama.cpp vs PeftSharp on the imported file {err:E2} (bound {bound:E0})");
        Assert.True(err < bound, $"{type} {ggmlType}: relative logit error {err:E2} ≥ {bound:E0}");
    }

    [Fact]
    public void F32ImportIsBitIdenticalToTheSource()
    {
        var c = GgufTestModels.Config("llama", 2048);
        var dir = GgufTestModels.Folder(c, GgufTestModels.DefaultModel);
        var gguf = Path.Combine(dir, "model.gguf");
        using var model = CausalLM.Load(dir);
        GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgmlType.F32);
        using var imported = CausalLM.Load(gguf);
        var ids = GgufLlamaCppAdapterTests.Ids(c.VocabSize);
        Assert.Equal(Passes.Logits(model, ids), Passes.Logits(imported, ids));
        var a = model.NamedWeights().ToDictionary(w => w.Name, w => w.Tensor.ToF32().Floats.ToArray());
        foreach (var (name, t) in imported.NamedWeights()) Assert.Equal(a[name], t.ToF32().Floats.ToArray());
    }

    [Fact]
    public void QLoraBaseIsDequantizedAndSaysSo()
    {
        var c = GgufTestModels.Config("llama", 2048);
        var dir = GgufTestModels.Folder(c, GgufTestModels.DefaultModel);
        var gguf = Path.Combine(dir, "from-4bit.gguf");
        using var model = CausalLM.Load(dir, new PeftSharp.Quantization.QuantizeOptions(PeftSharp.Quantization.Quant4Type.NF4, false, 64), TestCompute.Cpu);
        var report = GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgmlType.F16);
        Assert.Contains(report.Notes, n => n.Contains("dequantized to F16"));
        var ids = GgufLlamaCppAdapterTests.Ids(c.VocabSize);
        var ours = GgufLlamaCppAdapterTests.Rows(Passes.Logits(model, ids), ids.Length, c.VocabSize);
        double err = GgufTestModels.RelativeError(LlamaCpp.Logits(gguf, ids), ours);
        output.WriteLine($"NF4 base → F16 GGUF: {err:E2}");
        Assert.True(err < 3e-3, $"NF4 base exported as F16: {err:E2}");
    }
}
