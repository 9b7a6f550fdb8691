using System.Text.Json;
using PeftSharp.Kernels;

namespace PeftSharp.Models;

/// <summary>
/// Hugging Face config.json → <see cref="ModelConfig"/>, with the defaults of the transformers config classes
/// (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config) for keys a file leaves out.
/// </summary>
internal static class ModelConfigParser
{
    public static readonly string[] SupportedRopeTypes = ["default", "linear", "llama3"];

    public static ModelConfig Parse(string json, string source)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = false, MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            throw new PeftException($"{source}: not valid JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new PeftException($"{source}: config.json must be a JSON object");
            return FromObject(new ConfigJsonFields(doc.RootElement, source));
        }
    }

    static ModelConfig FromObject(ConfigJsonFields f)
    {
        string supported = string.Join(", ", ModelConfig.SupportedModelTypes);
        string modelType = f.OptionalString("model_type")
            ?? throw new PeftException($"{f.Source}: missing \"model_type\" (supported: {supported})");
        if (Array.IndexOf(ModelConfig.SupportedModelTypes, modelType) < 0)
            throw new PeftException($"{f.Source}: model_type \"{modelType}\" is not supported (supported: {supported})");

        // Every supported architecture uses SwiGLU; a different activation would compute a different model.
        string act = f.OptionalString("hidden_act") ?? "silu";
        if (act is not ("silu" or "swish"))
            throw new PeftException($"{f.Source}: \"hidden_act\" is \"{act}\", but {modelType} is supported only with \"silu\"");

        int hidden = f.RequiredPositiveInt("hidden_size");
        int heads = f.RequiredPositiveInt("num_attention_heads");
        int kvHeads = f.OptionalPositiveInt("num_key_value_heads") ?? heads;
        if (heads % kvHeads != 0)
            throw new PeftException(
                $"{f.Source}: \"num_attention_heads\" ({heads}) must be a multiple of \"num_key_value_heads\" ({kvHeads})");

        int? explicitHeadDim = f.OptionalPositiveInt("head_dim");
        int headDim;
        if (explicitHeadDim is int hd) headDim = hd;
        else if (modelType == "qwen3") headDim = 128; // Qwen3Config's default, not hidden/heads
        else
        {
            if (hidden % heads != 0)
                throw new PeftException(
                    $"{f.Source}: \"hidden_size\" ({hidden}) is not divisible by \"num_attention_heads\" ({heads}); give \"head_dim\"");
            headDim = hidden / heads;
        }

        bool attentionBias = f.OptionalBool("attention_bias") ?? false;
        var (qkvBias, outputBias, mlpBias, qkNorm) = modelType switch
        {
            "llama" => (attentionBias, attentionBias, f.OptionalBool("mlp_bias") ?? false, false),
            "mistral" => (false, false, false, false),
            "qwen2" => (true, false, false, false),          // Qwen2 always has q/k/v bias, never o_proj bias
            "qwen3" => (attentionBias, attentionBias, false, true),
            "phi3" => (false, false, false, false),          // Phi3Attention/Phi3MLP: no biases
            _ => throw new InvalidOperationException(modelType),
        };

        int layers = f.RequiredPositiveInt("num_hidden_layers");
        // Phi-3/3.5 rotate every dimension; a partial rotary factor (Phi-4-mini) is not implemented.
        if (modelType == "phi3" && f.OptionalNumber("partial_rotary_factor") is double prf && prf != 1.0)
            throw new PeftException($"{f.Source}: \"partial_rotary_factor\" is {prf}; only 1.0 (rotary on the whole head) is supported for phi3");
        return new ModelConfig
        {
            ModelType = modelType,
            VocabSize = f.RequiredPositiveInt("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = f.RequiredPositiveInt("intermediate_size"),
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            RmsNormEps = (float)PositiveOr(f, "rms_norm_eps", 1e-6),
            RopeTheta = PositiveOr(f, "rope_theta", 10000),
            RopeScaling = ParseRopeScaling(f),
            MaxPositions = f.OptionalPositiveInt("max_position_embeddings") ?? DefaultMaxPositions(modelType),
            TieWordEmbeddings = f.OptionalBool("tie_word_embeddings") ?? false,
            QkvBias = qkvBias,
            OutputBias = outputBias,
            MlpBias = mlpBias,
            QkNorm = qkNorm,
            SlidingWindow = ParseSlidingWindow(f, modelType),
            MaxWindowLayers = modelType is "qwen2" or "qwen3" ? f.OptionalInt("max_window_layers") ?? 28 : 0,
            SlidingLayerTypes = ParseLayerTypes(f, layers),
            BosTokenId = f.OptionalInt("bos_token_id"),
            EosTokenIds = f.IntOrIntList("eos_token_id"),
            TorchDtype = ParseDtype(f),
        };
    }

    static double PositiveOr(ConfigJsonFields f, string key, double fallback)
    {
        double v = f.OptionalNumber(key) ?? fallback;
        if (v <= 0) throw new PeftException($"{f.Source}: \"{key}\" must be a positive number, found {v}");
        return v;
    }

    static int DefaultMaxPositions(string modelType) => modelType switch
    {
        "llama" => 2048,
        "mistral" => 4096 * 32,
        "phi3" => 4096,
        _ => 32768,
    };

    /// <summary>mistral: `sliding_window` (MistralConfig default 4096; explicit null = none).
    /// qwen2/qwen3: only when `use_sliding_window` is true. llama: none.</summary>
    static int? ParseSlidingWindow(ConfigJsonFields f, string modelType)
    {
        switch (modelType)
        {
            case "mistral":
                return f.HasKey("sliding_window") ? f.OptionalPositiveInt("sliding_window") : 4096;
            case "phi3":
                return f.OptionalPositiveInt("sliding_window");   // Phi3Config default None
            case "qwen2":
            case "qwen3":
                bool use = f.OptionalBool("use_sliding_window") ?? false;
                int? window = f.OptionalPositiveInt("sliding_window");
                return use ? window ?? 4096 : null;
            default:
                return null;
        }
    }

    /// <summary>`layer_types` (newer transformers configs): one "sliding_attention" or "full_attention" per layer.</summary>
    static bool[]? ParseLayerTypes(ConfigJsonFields f, int layers)
    {
        if (!f.TryGet("layer_types", out var e)) return null;
        if (e.ValueKind != JsonValueKind.Array) throw f.Error("layer_types", "a list of \"sliding_attention\" / \"full_attention\"", e);
        if (e.GetArrayLength() != layers)
            throw new PeftException($"{f.Source}: \"layer_types\" has {e.GetArrayLength()} entries, but \"num_hidden_layers\" is {layers}");
        var types = new bool[layers];
        int i = 0;
        foreach (var t in e.EnumerateArray())
        {
            string? v = t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            types[i] = v switch
            {
                "sliding_attention" => true,
                "full_attention" => false,
                _ => throw new PeftException($"{f.Source}: \"layer_types\"[{i}] is {t.GetRawText()}; expected \"sliding_attention\" or \"full_attention\""),
            };
            i++;
        }
        return types;
    }

    static string ParseDtype(ConfigJsonFields f)
    {
        string key = f.TryGet("torch_dtype", out _) ? "torch_dtype" : "dtype";
        string? v = f.OptionalString(key);
        if (v is null) return "float32";
        if (v.StartsWith("torch.", StringComparison.Ordinal)) v = v["torch.".Length..];
        if (v is not ("float32" or "bfloat16" or "float16"))
            throw new PeftException($"{f.Source}: \"{key}\" is \"{v}\" (supported: float32, bfloat16, float16)");
        return v;
    }

    static RopeScaling? ParseRopeScaling(ConfigJsonFields f)
    {
        if (!f.TryGet("rope_scaling", out var e)) return null;
        if (e.ValueKind != JsonValueKind.Object) throw f.Error("rope_scaling", "an object or null", e);
        var r = new ConfigJsonFields(e, f.Source, "rope_scaling.");
        string typeKey = r.TryGet("rope_type", out _) ? "rope_type" : "type";
        string supported = string.Join(", ", SupportedRopeTypes);
        string type = r.OptionalString(typeKey)
            ?? throw new PeftException($"{f.Source}: \"rope_scaling\" needs \"rope_type\" (or \"type\"): one of {supported}");
        switch (type)
        {
            case "default":
                return null;
            case "linear":
                return new RopeScaling("linear", Factor: r.RequiredPositiveNumber("factor"));
            case "llama3":
                double low = r.RequiredPositiveNumber("low_freq_factor");
                double high = r.RequiredPositiveNumber("high_freq_factor");
                if (high <= low)
                    throw new PeftException(
                        $"{f.Source}: \"rope_scaling.high_freq_factor\" ({high}) must be larger than \"rope_scaling.low_freq_factor\" ({low})");
                int original = r.RequiredPositiveInt("original_max_position_embeddings");
                return new RopeScaling("llama3", r.RequiredPositiveNumber("factor"), low, high, original);
            default:
                throw new PeftException(
                    $"{f.Source}: \"rope_scaling.{typeKey}\" is \"{type}\", which is not supported (supported: {supported})");
        }
    }
}
