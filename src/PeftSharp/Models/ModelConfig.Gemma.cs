namespace PeftSharp.Models;

/// <summary>
/// The Gemma 2 / Gemma 3 text architecture's settings (transformers' Gemma2Config, Gemma3TextConfig). The block differs
/// from Llama's: RMSNorm scales by (1 + w), the attention and MLP outputs are normed again before their residual adds
/// (post_attention_layernorm, post_feedforward_layernorm; pre_feedforward_layernorm is the MLP's input norm), the MLP is
/// GeGLU with the tanh GELU, embeddings are multiplied by √hidden_size, attention scores are scaled by
/// query_pre_attn_scalar^-½ and may be soft-capped, and local (sliding-window) layers alternate with global ones.
/// </summary>
public sealed partial record ModelConfig
{
    /// <summary>gemma2 or gemma3_text: the Gemma block (see the type's remarks).</summary>
    public bool IsGemma => ModelType is "gemma2" or "gemma3_text";

    /// <summary>`query_pre_attn_scalar` (gemma; default 256): attention scores are q·k · query_pre_attn_scalar^-½.
    /// Null: 1/√head_dim as in Llama.</summary>
    public double? QueryPreAttnScalar { get; init; }

    /// <summary>`attn_logit_softcapping` (gemma2 default 50, gemma3 none): scores s become c·tanh(s / c) before the mask
    /// and softmax (transformers' eager attention). Null: no capping.</summary>
    public double? AttnLogitSoftcapping { get; init; }

    /// <summary>`final_logit_softcapping` (gemma2 default 30, gemma3 none): logits z become c·tanh(z / c). Null: none.</summary>
    public double? FinalLogitSoftcapping { get; init; }

    /// <summary>gemma3 `rope_local_base_freq` (default 10000): the RoPE base of the local (sliding-window) layers, which
    /// use plain RoPE; the global layers use <see cref="RopeTheta"/> with <see cref="RopeScaling"/>. Null: one RoPE for all.</summary>
    public double? RopeLocalTheta { get; init; }

    /// <summary>gemma: layer i is global when (i + 1) is a multiple of this, local otherwise (gemma2: 2, so even layers
    /// are local; gemma3 `sliding_window_pattern`, default 6). Used when the config has no `layer_types`.</summary>
    public int SlidingWindowPattern { get; init; }

    /// <summary>Set when the config was the multimodal gemma3 one: only its `text_config` is used and the checkpoint's
    /// vision weights (vision_tower, multi_modal_projector) are ignored; its language-model weights are read under
    /// their multimodal names. Saved configs are gemma3_text.</summary>
    public bool TextOfMultimodal { get; init; }

    /// <summary>Whether gemma layer <paramref name="layer"/> is local (sliding-window, local RoPE): `layer_types` when
    /// given, else the pattern rule of Gemma2Config / Gemma3TextConfig.</summary>
    internal bool GemmaLocalLayer(int layer) =>
        SlidingLayerTypes is { } types ? types[layer] : SlidingWindowPattern > 0 && (layer + 1) % SlidingWindowPattern != 0;

    /// <summary>Whether layer <paramref name="layer"/> uses <see cref="RopeLocalTheta"/> instead of the global RoPE.</summary>
    internal bool UsesLocalRope(int layer) => RopeLocalTheta is not null && GemmaLocalLayer(layer);

    /// <summary>What RMSNorm adds to its stored weight: 1 for Gemma's x·(1 + w), 0 for Llama's x·w.</summary>
    internal float NormWeightOffset => IsGemma ? 1f : 0f;

    /// <summary>The factor on q (after RoPE) that turns the kernels' 1/√head_dim into query_pre_attn_scalar^-½; 1 when
    /// they agree (gemma-2-2b, gemma-3-1b: both 256).</summary>
    internal float QueryScale => QueryPreAttnScalar is double s ? (float)Math.Sqrt(HeadDim / s) : 1f;

    /// <summary>Attention soft cap as the kernels take it (0 = none).</summary>
    internal float AttentionSoftcap => (float)(AttnLogitSoftcapping ?? 0);

    /// <summary>Final-logit soft cap as the kernels take it (0 = none).</summary>
    internal float LogitSoftcap => (float)(FinalLogitSoftcapping ?? 0);

    bool GemmaFieldsEqual(ModelConfig other) =>
        QueryPreAttnScalar == other.QueryPreAttnScalar && AttnLogitSoftcapping == other.AttnLogitSoftcapping
        && FinalLogitSoftcapping == other.FinalLogitSoftcapping && RopeLocalTheta == other.RopeLocalTheta
        && SlidingWindowPattern == other.SlidingWindowPattern && TextOfMultimodal == other.TextOfMultimodal;
}
