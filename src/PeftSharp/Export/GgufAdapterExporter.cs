using PeftSharp.IO.Gguf;
using PeftSharp.Peft;

namespace PeftSharp.Export;

/// <summary>
/// Writes a LoRA adapter as a llama.cpp GGUF adapter (what convert_lora_to_gguf.py writes): general.type "adapter",
/// the base's general.architecture, adapter.type "lora", adapter.lora.alpha, and per adapted weight
/// <c>&lt;base tensor&gt;.lora_a</c> (r, in) and <c>.lora_b</c> (out, r). llama.cpp scales each pair by alpha / r with r
/// read from lora_b, so one alpha is stored: that of the first module (alpha·√r for rsLoRA, giving alpha/√r); a module
/// whose scale differs (rank_pattern, alpha_pattern, rsLoRA with mixed ranks) has the ratio folded into its B. For the
/// "llama" architecture B's rows of q/k get the same permutation as the base weights; phi3's fused qkv_proj and
/// gate_up_proj adapt llama.cpp's fused attn_qkv and ffn_up, whose rows are in the Hugging Face order.
/// </summary>
internal static class GgufAdapterExporter
{
    /// <summary>The factors of a plain LoRA adapter; DoRA is refused here (use <see cref="DoraAsLora"/> or merge).</summary>
    public static List<LoraFactors> LoraFactorsOf(PeftModel pm, string adapter)
    {
        if (!pm.Configs.TryGetValue(adapter, out var config)) throw new PeftException($"no adapter named '{adapter}'");
        if (config.UseDora)
            throw new PeftException("llama.cpp has no DoRA (the magnitude vector cannot be stored in a GGUF adapter): " +
                "pass --merge to write the merged model, or --as-lora R to write a rank-R LoRA that approximates it");
        if (config.ModulesToSave is { Count: > 0 } mts)
            throw new PeftException($"the adapter trains modules_to_save ({string.Join(", ", mts)}) in full, which a GGUF LoRA adapter cannot hold; pass --merge");
        if (config.Bias != "none")
            throw new PeftException($"the adapter trains biases (bias \"{config.Bias}\"), which a GGUF LoRA adapter cannot hold; pass --merge");
        var list = new List<LoraFactors>();
        foreach (var m in pm.LoraModules)
        {
            if (!m.Adapters.TryGetValue(adapter, out var ad)) continue;
            list.Add(new LoraFactors(m.Name, ad.Rank, m.InFeatures, m.OutFeatures, ad.A.Value.Floats.ToArray(),
                ad.B.Value.Floats.ToArray(), ad.Scaling));
        }
        if (list.Count == 0) throw new PeftException($"adapter '{adapter}' adapts no module");
        return list;
    }

    /// <summary>Writes <paramref name="factors"/> for a base of <paramref name="config"/>; returns the stored alpha.</summary>
    public static float Export(IReadOnlyList<LoraFactors> factors, Models.ModelConfig config, string outPath, string? name = null)
    {
        string arch = GgufArchitecture.For(config.ModelType);
        bool permute = GgufArchitecture.PermutesQk(arch);
        float alpha = (float)(factors[0].Scale * factors[0].Rank);
        var meta = new GgufMetadata(outPath);
        meta.Set("general.type", "adapter");
        meta.Set("general.architecture", arch);
        if (name != null) meta.Set("general.name", name);
        meta.Set("adapter.type", "lora");
        meta.Set("adapter.lora.alpha", alpha);
        var tensors = new List<GgufTensorSource>();
        foreach (var f in factors)
        {
            string baseName = GgufTensorNames.ToGguf(f.Module + ".weight", arch) ?? throw new PeftException($"{f.Module}: no llama.cpp tensor name");
            double fold = f.Scale / (alpha / (double)f.Rank);
            var b = f.B;
            if (Math.Abs(fold - 1) > 1e-12) b = b.Select(x => (float)(x * fold)).ToArray();
            bool qk = permute && (f.Module.EndsWith("q_proj") || f.Module.EndsWith("k_proj"));
            var a = f.A;
            tensors.Add(GgufModelExporter.Encode(new WeightRows(f.Module + ".lora_A", [f.Rank, f.In], (r0, n, d) => a.AsSpan(r0 * f.In, n * f.In).CopyTo(d)),
                baseName + ".lora_a", GgmlType.F32, 0));
            tensors.Add(GgufModelExporter.Encode(new WeightRows(f.Module + ".lora_B", [f.Out, f.Rank], (r0, n, d) => b.AsSpan(r0 * f.Rank, n * f.Rank).CopyTo(d)),
                baseName + ".lora_b", GgmlType.F32, qk ? config.HeadDim : 0));
        }
        GgufWriter.Write(outPath, meta, tensors);
        return alpha;
    }
}
