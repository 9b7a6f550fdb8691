using PeftSharp.Tests.TestSupport;
using Xunit.Abstractions;
using PeftSharp.Export;
using PeftSharp.IO.Gguf;
using PeftSharp.Models;
using PeftSharp.Peft;

namespace PeftSharp.Tests.Gguf;

/// <summary>Exported models run in llama.cpp give PeftSharp's logits.</summary>
public class GgufLlamaCppModelTests(ITestOutputHelper output)
{
    static float[][] PeftLogits(CausalLM m, int[] ids)
    {
        var flat = Passes.Logits(m, ids);
        int V = m.Config.VocabSize;
        return Enumerable.Range(0, ids.Length).Select(i => flat.AsSpan(i * V, V).ToArray()).ToArray();
    }

    static int[] Ids(int vocab, int n = 24) => Enumerable.Range(0, n).Select(i => (int)((3 + 7919L * i) % vocab)).ToArray();

    [Theory]
    [InlineData("llama", false)]
    [InlineData("mistral", false)]
    [InlineData("qwen2", false)]
    [InlineData("qwen3", false)]
    [InlineData("llama", true)]
    public void F32ExportMatchesLlamaCppWithin1e4(string type, bool tied)
    {
        var c = GgufTestModels.Config(type, 2048, tied);
        var dir = GgufTestModels.Folder(c, GgufTestModels.DefaultModel);
        var gguf = Path.Combine(dir, "model.gguf");
        using var model = CausalLM.Load(dir);
        GgufModelExporter.Export(model, TestCompute.Cpu, dir, gguf, GgmlType.F32);
        var ids = Ids(c.VocabSize);
        var ours = PeftLogits(model, ids);
        var theirs = LlamaCpp.Logits(gguf, ids);
        double err = GgufTestModels.RelativeError(theirs, ours);
        output.WriteLine($"{type} tied={tied}: relative error {err:E2}");
        Assert.True(err < 1e-4, $"{type}: llama.cpp vs PeftSharp relative logit error {err:E2}");
    }
}
