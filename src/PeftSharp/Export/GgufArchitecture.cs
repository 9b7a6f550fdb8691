using PeftSharp.IO.Gguf;
using PeftSharp.Models;

namespace PeftSharp.Export;

/// <summary>
/// The llama.cpp architecture of a Hugging Face model type and the <c>{arch}.*</c> hyper-parameter keys
/// (convert_hf_to_gguf: Mistral is written as "llama"; Qwen2 and Qwen3 have their own). llama.cpp's "llama"
/// architecture applies RoPE to adjacent pairs, so its converter permutes the rows of q_proj and k_proj; qwen2/qwen3
/// use the NeoX (half-split) form as HF does and are written unpermuted, as are phi3 (fused q|k|v, see
/// <see cref="GgufPhi3"/>) and gemma.
/// </summary>
internal static class GgufArchitecture
{
    public static string For(string modelType) => modelType switch
    {
        "llama" or "mistral" => "llama",
        "qwen2" => "qwen2",
        "qwen3" => "qwen3",
        "gemma2" => "gemma2",
        "gemma3_text" => "gemma3",
        "phi3" => "phi3",
        _ => throw new PeftException($"model_type '{modelType}' has no GGUF mapping (supported: llama, mistral, qwen2, qwen3, phi3, gemma2, gemma3_text)"),
    };

    /// <summary>True when q/k rows are stored interleaved (llama.cpp's "llama" RoPE) and must be permuted.</summary>
    public static bool PermutesQk(string arch) => arch == "llama";

    /// <summary>Writes general.architecture and the architecture's hyper-parameters.</summary>
    public static void WriteHyperParameters(GgufMetadata m, ModelConfig c)
    {
        string a = For(c.ModelType);
        if (a == "phi3") GgufPhi3.RefuseUnrepresentable(c);   // llama3 RoPE, before the switch below accepts it
        m.Set("general.architecture", a);
        m.Set($"{a}.context_length", (uint)c.MaxPositions);
        m.Set($"{a}.embedding_length", (uint)c.HiddenSize);
        m.Set($"{a}.block_count", (uint)c.NumLayers);
        m.Set($"{a}.feed_forward_length", (uint)c.IntermediateSize);
        m.Set($"{a}.attention.head_count", (uint)c.NumHeads);
        m.Set($"{a}.attention.head_count_kv", (uint)c.NumKvHeads);
        m.Set($"{a}.attention.key_length", (uint)c.HeadDim);
        m.Set($"{a}.attention.value_length", (uint)c.HeadDim);
        m.Set($"{a}.rope.dimension_count", (uint)c.HeadDim);
        m.Set($"{a}.rope.freq_base", (float)c.RopeTheta);
        m.Set($"{a}.attention.layer_norm_rms_epsilon", c.RmsNormEps);
        m.Set($"{a}.vocab_size", (uint)c.VocabSize);
        switch (c.RopeScaling?.Type)
        {
            case null or "default": break;
            case "linear":
                m.Set($"{a}.rope.scaling.type", "linear");
                m.Set($"{a}.rope.scaling.factor", (float)c.RopeScaling.Factor);
                break;
            case "llama3":
                // llama.cpp reads llama3 scaling from the rope_freqs.weight tensor (see RopeFrequencyFactors)
                break;
            case "longrope" when a == "phi3":
                // the factor tensors and attn_factor (GgufPhi3)
                break;
            default: throw new PeftException($"rope_scaling type '{c.RopeScaling.Type}' has no GGUF form");
        }
        if (c.SlidingWindow is { } sw && a != "llama") m.Set($"{a}.attention.sliding_window", (uint)sw);
        if (c.IsGemma) GgufGemma.WriteHyperParameters(m, a, c);
        if (a == "phi3") GgufPhi3.WriteHyperParameters(m, c);
    }

    /// <summary>llama3 RoPE scaling as llama.cpp takes it: per-frequency divisors of the angle (rope_freqs.weight),
    /// unscaled inverse frequency / scaled one; null for other scalings.</summary>
    public static float[]? RopeFrequencyFactors(ModelConfig c)
    {
        if (c.RopeScaling?.Type != "llama3") return null;
        var plain = PeftSharp.Kernels.RopeTable.InverseFrequencies(c.HeadDim, c.RopeTheta, null);
        var scaled = PeftSharp.Kernels.RopeTable.InverseFrequencies(c.HeadDim, c.RopeTheta, c.RopeScaling);
        return plain.Select((p, i) => (float)(p / scaled[i])).ToArray();
    }
}
