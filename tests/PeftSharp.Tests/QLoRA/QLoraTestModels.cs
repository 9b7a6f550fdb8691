using PeftSharp.Models;
using PeftSharp.Quantization;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.QLoRA;

/// <summary>Tiny models whose projections are big enough (64·64 = 4096 elements) for several 64-blocks and a nested block.</summary>
static class QLoraTestModels
{
    public static ModelConfig Config(string type = "llama") => TinyModels.Config(type, hidden: 64, heads: 4, kvHeads: 2, intermediate: 96);

    public static readonly QuantizeOptions Nf4Dq = new(Quant4Type.NF4, true, 64);

    public static CausalLM Quantized(ModelConfig c, Dictionary<string, Tensor> w, QuantizeOptions? q = null) =>
        CausalLM.FromTensors(c, n => w.TryGetValue(n, out var t) ? t : null, "test weights", q ?? Nf4Dq, null, TestCompute.Cpu);

    /// <summary>The dense model whose projections are the quantized model's dequantized weights.</summary>
    public static CausalLM DenseOverDequantized(ModelConfig c, Dictionary<string, Tensor> w, CausalLM quantized, List<Tensor> owned)
    {
        var map = new Dictionary<string, Tensor>(w);
        foreach (var q in quantized.QuantizedProjections())
        {
            var t = new Tensor(DType.F32, q.OutFeatures, q.InFeatures);
            q.Weight.Dequantize(TestCompute.Cpu, t.Floats);
            owned.Add(t);
            map[q.Name + ".weight"] = t;
        }
        return TinyModels.Build(c, map);
    }
}
