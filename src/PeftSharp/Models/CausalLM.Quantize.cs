using PeftSharp.Compute;
using PeftSharp.Nn;
using PeftSharp.Quantization;

namespace PeftSharp.Models;

public sealed partial class CausalLM
{
    /// <summary>
    /// Quantizes every projection that is still a bare dense <see cref="Linear"/> to 4 bits in <paramref name="options"/>
    /// and records the model's quantization. A LoftQ run calls it after LoftQ made the targeted projections 4-bit, so
    /// the whole base is stored as QLoRA stores it. A dense projection already wrapped by an adapter cannot be swapped
    /// and is an error.
    /// </summary>
    internal void QuantizeDenseProjections(ComputeContext ctx, QuantizeOptions options)
    {
        foreach (var l in Layers)
            foreach (var p in l.Projections.ToList())
            {
                if (p is Linear lin)
                {
                    var q = Quantized4Bit.Quantize(ctx, lin.Weight, options.Type, options.BlockSize, options.DoubleQuant, lin.Name + ".weight");
                    var ql = new QuantizedLinear(lin.Name, q, lin.Bias);
                    l.Replace(lin.Name, _ => ql);
                    lin.Dispose();
                }
                else if (BaseProjection(p) is Linear)
                    throw new PeftException($"{p.Name}: cannot quantize a dense projection that already carries an adapter");
            }
        int quantized = QuantizedProjections().Count();
        Quantization = new QuantizationInfo(options, Quantization?.PreQuantized ?? false, quantized,
            Layers.Sum(l => l.Projections.Count()) - quantized, UnquantizedModuleKinds(this));
    }
}
