using PeftSharp.IO;
using PeftSharp.Tensors;

namespace PeftSharp.Quantization;

/// <summary>
/// Storage of the 4-bit weights of a bitsandbytes checkpoint, measured from its safetensors entries (not from the
/// format's nominal rate): bits per parameter = (packed codes + absmax + nested absmax bytes)·8 / parameters, as
/// bitsandbytes and the QLoRA paper count it (4.5 at blocksize 64, ≈4.127 with double quantization); the 16- and
/// 256-entry maps and the JSON quant state are reported separately.
/// </summary>
internal sealed record QuantizedFileStats(int Modules, long Parameters, long CodeAndScaleBytes, long OverheadBytes, string Types)
{
    public double BitsPerParameter => Parameters == 0 ? 0 : CodeAndScaleBytes * 8.0 / Parameters;
    public double BitsPerParameterWithMaps => Parameters == 0 ? 0 : (CodeAndScaleBytes + OverheadBytes) * 8.0 / Parameters;

    public static QuantizedFileStats Measure(SafetensorsCheckpoint ckpt, string source)
    {
        int modules = 0;
        long parameters = 0, core = 0, overhead = 0;
        var types = new SortedSet<string>();
        long Size(string key) => ckpt.Contains(key) ? ckpt.Entry(key).ByteLength : 0;
        foreach (var name in ckpt.Names.ToList())
        {
            int at = name.IndexOf(".weight.quant_state.bitsandbytes__", StringComparison.Ordinal);
            if (at < 0) continue;
            string prefix = name[..at];
            using var q = BnbQuantState.FromTensors(prefix, k => ckpt.Contains(k) ? ckpt.Get(k) : null, source);
            Models.MappedPages.Release(ckpt.Get(prefix + ".weight"));   // read once; keep the resident set small
            modules++;
            parameters += q.ElementCount;
            types.Add(q.QuantType.BnbName() + (q.DoubleQuant ? "+dq" : ""));
            core += Size(prefix + ".weight") + Size(prefix + ".weight.absmax") + Size(prefix + ".weight.nested_absmax");
            overhead += Size(prefix + ".weight.quant_map") + Size(prefix + ".weight.nested_quant_map") + Size(name);
        }
        return new QuantizedFileStats(modules, parameters, core, overhead, string.Join(",", types));
    }

    public override string ToString() => Modules == 0 ? "no 4-bit weights"
        : $"{Modules} 4-bit weights ({Types}), {Parameters:N0} parameters: {BitsPerParameter:F3} bits/parameter measured from the file " +
          $"(codes + absmax + nested absmax; {BitsPerParameterWithMaps:F3} with quant maps and quant state)";
}
