namespace PeftSharp.Models;

/// <summary>Hugging Face tensor names of the Llama-family layout (llama, mistral, qwen2, qwen3 share it).</summary>
internal static class WeightNames
{
    public const string Embed = "model.embed_tokens.weight";
    public const string FinalNorm = "model.norm.weight";
    public const string LmHead = "lm_head.weight";

    public static string Layer(int i) => $"model.layers.{i}";
    public static string InputNorm(int i) => $"{Layer(i)}.input_layernorm.weight";
    public static string PostNorm(int i) => $"{Layer(i)}.post_attention_layernorm.weight";
    public static string QNorm(int i) => $"{Layer(i)}.self_attn.q_norm.weight";
    public static string KNorm(int i) => $"{Layer(i)}.self_attn.k_norm.weight";
    /// <summary>Gemma: the MLP's input norm (post_attention_layernorm there norms the attention output) and the norm of
    /// the MLP output before its residual add.</summary>
    public static string PreFfnNorm(int i) => $"{Layer(i)}.pre_feedforward_layernorm.weight";
    public static string PostFfnNorm(int i) => $"{Layer(i)}.post_feedforward_layernorm.weight";

    /// <summary>Module names (no ".weight") of the seven projections of layer i, in HF order.</summary>
    public static string Attn(int i, string proj) => $"{Layer(i)}.self_attn.{proj}";
    public static string Mlp(int i, string proj) => $"{Layer(i)}.mlp.{proj}";

    public static readonly string[] AttentionProjections = ["q_proj", "k_proj", "v_proj", "o_proj"];
    public static readonly string[] MlpProjections = ["gate_proj", "up_proj", "down_proj"];

    /// <summary>phi3's fused modules: qkv_proj rows are q (Hq·D), then k, then v (Hkv·D each); gate_up_proj rows are
    /// gate (F), then up (F) (transformers' Phi3Attention / Phi3MLP slicing).</summary>
    public const string FusedQkv = "qkv_proj", FusedGateUp = "gate_up_proj";
}
