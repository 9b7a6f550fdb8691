using PeftSharp.Kernels;

namespace PeftSharp.Models;

/// <summary>The parts of a Hugging Face config.json that decide the architecture.</summary>
public sealed partial record ModelConfig
{
    /// <summary>The `model_type` values this library loads: llama, mistral, qwen2, qwen3, phi3, gemma2, gemma3_text, and
    /// the multimodal gemma3 (its `text_config`: the text model only).</summary>
    public static readonly string[] SupportedModelTypes = ["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3_text", "gemma3"];

    /// <summary>`model_type`: one of <see cref="SupportedModelTypes"/>.</summary>
    public required string ModelType { get; init; }
    /// <summary>`vocab_size`: rows of the embedding and of the LM head.</summary>
    public required int VocabSize { get; init; }
    /// <summary>`hidden_size`: width of the residual stream.</summary>
    public required int HiddenSize { get; init; }
    /// <summary>`intermediate_size`: width of the SwiGLU MLP (gate/up outputs).</summary>
    public required int IntermediateSize { get; init; }
    /// <summary>`num_hidden_layers`: number of decoder blocks.</summary>
    public required int NumLayers { get; init; }
    /// <summary>`num_attention_heads`: query heads.</summary>
    public required int NumHeads { get; init; }
    /// <summary>`num_key_value_heads` (default: <see cref="NumHeads"/>): key/value heads; divides <see cref="NumHeads"/> (grouped-query attention).</summary>
    public required int NumKvHeads { get; init; }
    /// <summary>Explicit `head_dim` (qwen3, some llama) or hidden_size / num_attention_heads.</summary>
    public required int HeadDim { get; init; }
    /// <summary>`rms_norm_eps`, &gt; 0 (default 1e-6).</summary>
    public float RmsNormEps { get; init; } = 1e-6f;
    /// <summary>`rope_theta`: RoPE base, &gt; 0 (default 10000).</summary>
    public double RopeTheta { get; init; } = 10000;
    /// <summary>null = plain RoPE (`rope_scaling` null or rope_type "default"); otherwise "linear" or "llama3".</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>`max_position_embeddings`: longest sequence, in tokens (default when absent: llama 2048,
    /// mistral 131072, qwen2/qwen3 32768).</summary>
    public int MaxPositions { get; init; } = 2048;
    /// <summary>`tie_word_embeddings` (default false): the LM head reuses the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on q/k/v projections (qwen2; llama/qwen3 with attention_bias).</summary>
    public bool QkvBias { get; init; }
    /// <summary>Bias on o_proj (llama/qwen3 with attention_bias).</summary>
    public bool OutputBias { get; init; }
    /// <summary>Bias on gate/up/down (llama mlp_bias).</summary>
    public bool MlpBias { get; init; }
    /// <summary>RMSNorm on each q and k head before RoPE (qwen3).</summary>
    public bool QkNorm { get; init; }
    /// <summary>phi3: q, k, v are one `qkv_proj` and gate, up one `gate_up_proj` (the checkpoint's and PEFT's module names).</summary>
    public bool FusedProjections => ModelType == "phi3";
    /// <summary>Sliding-window length, if the config enables one (mistral `sliding_window`; qwen only with
    /// `use_sliding_window`): a token attends to itself and the window − 1 positions before it, on the layers that
    /// <see cref="AttentionWindow"/> says.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>qwen2/qwen3 `max_window_layers`: layers below it keep full attention (config default 28).</summary>
    public int MaxWindowLayers { get; init; }
    /// <summary>Explicit `layer_types` (true = "sliding_attention"), or null to derive the layer kinds from the model type.</summary>
    public bool[]? SlidingLayerTypes { get; init; }

    /// <summary>The window layer <paramref name="layer"/> attends within, 0 for full causal attention. Follows the
    /// transformers configs: `layer_types` when given; otherwise mistral and phi3 every layer, qwen2/qwen3 layers ≥
    /// max_window_layers.</summary>
    public int AttentionWindow(int layer)
    {
        if (SlidingWindow is not int w) return 0;
        if (SlidingLayerTypes is { } types) return types[layer] ? w : 0;
        return ModelType switch
        {
            "qwen2" or "qwen3" => layer >= MaxWindowLayers ? w : 0,
            "gemma2" or "gemma3_text" => GemmaLocalLayer(layer) ? w : 0,
            _ => w,
        };
    }

    /// <summary>`bos_token_id`, or null when absent.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>`eos_token_id` (one id or a list); empty when absent. Generation stops on any of them.</summary>
    public int[] EosTokenIds { get; init; } = [];
    /// <summary>`torch_dtype` (or `dtype`) as written: "bfloat16", "float16", "float32".</summary>
    public string TorchDtype { get; init; } = "float32";

    /// <summary>Reads config.json; unsupported model_type lists the supported ones; bad fields name the key.</summary>
    public static ModelConfig Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "config.json");
        if (!File.Exists(path)) throw new PeftException($"{path}: config.json not found");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses config.json text; <paramref name="sourceName"/> (usually the path) starts every error message.</summary>
    /// <param name="json">The config.json contents.</param>
    /// <param name="sourceName">Names the source in errors.</param>
    public static ModelConfig Parse(string json, string sourceName) => ModelConfigParser.Parse(json, sourceName);

    /// <summary>A config.json that HF transformers loads for this architecture.</summary>
    public string ToJson() => ModelConfigWriter.ToJson(this);

    /// <summary>Value equality, element-wise on <see cref="EosTokenIds"/> (the generated record equality would
    /// compare the array by reference, so a parsed config would never equal its round trip).</summary>
    public bool Equals(ModelConfig? other) =>
        other is not null
        && ModelType == other.ModelType && VocabSize == other.VocabSize && HiddenSize == other.HiddenSize
        && IntermediateSize == other.IntermediateSize && NumLayers == other.NumLayers && NumHeads == other.NumHeads
        && NumKvHeads == other.NumKvHeads && HeadDim == other.HeadDim && RmsNormEps.Equals(other.RmsNormEps)
        && RopeTheta.Equals(other.RopeTheta) && Equals(RopeScaling, other.RopeScaling) && MaxPositions == other.MaxPositions
        && TieWordEmbeddings == other.TieWordEmbeddings && QkvBias == other.QkvBias && OutputBias == other.OutputBias
        && MlpBias == other.MlpBias && QkNorm == other.QkNorm && SlidingWindow == other.SlidingWindow
        && MaxWindowLayers == other.MaxWindowLayers
        && (SlidingLayerTypes ?? []).AsSpan().SequenceEqual(other.SlidingLayerTypes ?? []) && (SlidingLayerTypes is null) == (other.SlidingLayerTypes is null)
        && BosTokenId == other.BosTokenId && EosTokenIds.AsSpan().SequenceEqual(other.EosTokenIds)
        && TorchDtype == other.TorchDtype && GemmaFieldsEqual(other);

    /// <inheritdoc/>
    public override int GetHashCode() =>
        HashCode.Combine(ModelType, VocabSize, HiddenSize, NumLayers, NumHeads, NumKvHeads, HeadDim, TieWordEmbeddings);
}
