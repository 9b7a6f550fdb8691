using PeftSharp.Quantization.IntGroup;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

// Random GPTQ/AWQ bases: benchmarks of training over a packed base at full size.
public sealed partial class CausalLM
{
    /// <summary>True for a decoder projection's weight name (model.layers.N.self_attn|mlp.*_proj.weight).</summary>
    internal static bool IsProjectionWeight(string name) =>
        name.StartsWith("model.layers.", StringComparison.Ordinal) && name.EndsWith("_proj.weight", StringComparison.Ordinal);

    /// <summary>
    /// Random weights (as <see cref="CreateRandomQuantized"/>, each tensor from its own seed) with every projection
    /// round-to-nearest quantized into <paramref name="packing"/>'s checkpoint tensors as it is generated
    /// (<see cref="IntGroupRtn"/>), then loaded as a GPTQ/AWQ checkpoint is: one dense projection exists at a time.
    /// </summary>
    internal static CausalLM CreateRandomPacked(ModelConfig c, DType dtype, ulong seed, IntGroupConfig packing)
    {
        var specs = RandomWeights.Specs(c).ToDictionary(s => s.Name);
        var kept = new Dictionary<string, Tensor>();
        var packedModules = new HashSet<string>();   // packed once; their tensors leave `kept` when the loader releases them
        Tensor? Get(string name)
        {
            if (kept.TryGetValue(name, out var t)) return t;
            int dot = name.LastIndexOf('.');
            string module = name[..dot], field = name[(dot + 1)..];
            if (field is "qweight" or "qzeros" or "scales" or "g_idx")
            {
                if (!specs.TryGetValue(module + ".weight", out var ws) || !IsProjectionWeight(ws.Name) || !packedModules.Add(module)) return null;
                using var dense = RandomWeights.CreateOne(ws, DType.F32, seed);
                foreach (var (n, packed) in IntGroupRtn.Quantize(module, dense.Floats, ws.Shape[0], ws.Shape[1], packing)) kept[n] = packed;
                return kept.GetValueOrDefault(name);
            }
            if (!specs.TryGetValue(name, out var s) || IsProjectionWeight(name)) return null;
            return kept[name] = RandomWeights.CreateOne(s, dtype, seed);
        }
        CausalLM model;
        try
        {
            model = FromTensors(c, Get, "random packed weights", null, (name, t) => { kept.Remove(name); t.Dispose(); }, null, packing);
        }
        catch
        {
            foreach (var t in kept.Values) t.Dispose();
            throw;
        }
        model._owned.AddRange(kept.Values);
        return model;
    }
}
