using System.Text.RegularExpressions;
using PeftSharp.Models;

namespace PeftSharp.Export;

/// <summary>Hugging Face ⇄ llama.cpp tensor names of the Llama-family layout (llama.cpp's tensor_mapping, the subset
/// this project's models have).</summary>
internal static partial class GgufTensorNames
{
    static readonly (string Hf, string Gguf)[] LayerParts =
    [
        ("input_layernorm.weight", "attn_norm.weight"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
        ("self_attn.q_norm.weight", "attn_q_norm.weight"),
        ("self_attn.k_norm.weight", "attn_k_norm.weight"),
        ("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.q_proj.bias", "attn_q.bias"),
        ("self_attn.k_proj.weight", "attn_k.weight"), ("self_attn.k_proj.bias", "attn_k.bias"),
        ("self_attn.v_proj.weight", "attn_v.weight"), ("self_attn.v_proj.bias", "attn_v.bias"),
        ("self_attn.o_proj.weight", "attn_output.weight"), ("self_attn.o_proj.bias", "attn_output.bias"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"), ("mlp.gate_proj.bias", "ffn_gate.bias"),
        ("mlp.up_proj.weight", "ffn_up.weight"), ("mlp.up_proj.bias", "ffn_up.bias"),
        ("mlp.down_proj.weight", "ffn_down.weight"), ("mlp.down_proj.bias", "ffn_down.bias"),
    ];

    /// <summary>phi3's fused projections (llama.cpp's attn_qkv, and ffn_up holding gate | up); read back only for phi3,
    /// since ffn_up is up_proj in the other architectures.</summary>
    static readonly (string Hf, string Gguf)[] FusedParts =
    [
        ("self_attn.qkv_proj.weight", "attn_qkv.weight"),
        ("mlp.gate_up_proj.weight", "ffn_up.weight"),
    ];

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")]
    private static partial Regex HfLayer();

    [GeneratedRegex(@"^blk\.(\d+)\.(.+)$")]
    private static partial Regex GgufLayer();

    /// <summary>Gemma's four block norms (llama.cpp's gemma2/gemma3 names): its post_attention_layernorm norms the
    /// attention output, and the MLP's input norm is pre_feedforward_layernorm.</summary>
    static readonly (string Hf, string Gguf)[] GemmaNorms =
    [
        ("post_attention_layernorm.weight", "post_attention_norm.weight"),
        ("pre_feedforward_layernorm.weight", "ffn_norm.weight"),
        ("post_feedforward_layernorm.weight", "post_ffw_norm.weight"),
    ];

    /// <summary>The GGUF name of a Hugging Face tensor name in llama.cpp architecture <paramref name="arch"/>, or null
    /// for one llama.cpp has no place for.</summary>
    public static string? ToGguf(string hf, string arch)
    {
        if (arch is "gemma2" or "gemma3" && HfLayer().Match(hf) is { Success: true } m)
            foreach (var (h, g) in GemmaNorms)
                if (m.Groups[2].Value == h) return $"blk.{m.Groups[1].Value}.{g}";
        return ToGguf(hf);
    }

    /// <summary>The GGUF name of a Hugging Face tensor name, or null for one llama.cpp has no place for.</summary>
    public static string? ToGguf(string hf)
    {
        switch (hf)
        {
            case WeightNames.Embed: return "token_embd.weight";
            case WeightNames.FinalNorm: return "output_norm.weight";
            case WeightNames.LmHead: return "output.weight";
        }
        var m = HfLayer().Match(hf);
        if (!m.Success) return null;
        foreach (var (h, g) in LayerParts.Concat(FusedParts))
            if (m.Groups[2].Value == h) return $"blk.{m.Groups[1].Value}.{g}";
        return null;
    }

    /// <summary>The Hugging Face name of a GGUF tensor name in llama.cpp architecture <paramref name="arch"/>, or null.</summary>
    public static string? ToHf(string gguf, string arch)
    {
        if (arch == "phi3" && GgufLayer().Match(gguf) is { Success: true } m)
            foreach (var (h, g) in FusedParts)
                if (m.Groups[2].Value == g) return $"model.layers.{m.Groups[1].Value}.{h}";
        if (arch is "gemma2" or "gemma3" && GgufLayer().Match(gguf) is { Success: true } gm)
            foreach (var (h, g) in GemmaNorms)
                if (gm.Groups[2].Value == g) return $"model.layers.{gm.Groups[1].Value}.{h}";
        return ToHf(gguf);
    }

    /// <summary>The Hugging Face name of a GGUF tensor name, or null.</summary>
    public static string? ToHf(string gguf)
    {
        switch (gguf)
        {
            case "token_embd.weight": return WeightNames.Embed;
            case "output_norm.weight": return WeightNames.FinalNorm;
            case "output.weight": return WeightNames.LmHead;
        }
        var m = GgufLayer().Match(gguf);
        if (!m.Success) return null;
        foreach (var (h, g) in LayerParts)
            if (m.Groups[2].Value == g) return $"model.layers.{m.Groups[1].Value}.{h}";
        return null;
    }
}
