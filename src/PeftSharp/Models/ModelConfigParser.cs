using System.Text.Json;
using PeftSharp.Kernels;

namespace PeftSharp.Models;

/// <summary>
/// Hugging Face config.json → <see cref="ModelConfig"/>, with the defaults of the transformers config classes
/// (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config) for keys a file leaves out.
/// </summary>
internal static class ModelConfigParser
{
    public static readonly string[] SupportedRopeTypes = ["default", "linear", "llama3", "longrope"];

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
            try { return FromObject(new ConfigJsonFields(doc.RootElement, source)); }
            catch (InvalidOperationException e)
            {
                throw new PeftException($"{source}: a key or string is not valid Unicode (a lone surrogate escape?): {e.Message}");
            }
        }
    }

    static ModelConfig FromObject(ConfigJsonFields f)
    {
        string supported = string.Join(", ", ModelConfig.SupportedModelTypes);
        string modelType = f.OptionalString("model_type")
            ?? throw new PeftException($"{f.Source}: missing \"model_type\" (supported: {supported})");
        if (Array.IndexOf(ModelConfig.SupportedModelTypes, modelType) < 0)
            throw new PeftException($"{f.Source}: model_type \"{modelType}\" is not supported (supported: {supported})");
        if (modelType == "gemma3") return GemmaConfigFields.TextOfMultimodal(f, FromObject);
        return FromObject(f, modelType, outer: null);
    }

    /// <summary>The config of <paramref name="modelType"/> from <paramref name="f"/>; <paramref name="outer"/> is the
    /// multimodal config around a text_config (its torch_dtype and token ids are used when the text config has none).</summary>
    internal static ModelConfig FromObject(ConfigJsonFields f, string modelType, ConfigJsonFields? outer)
    {
        bool gemma = modelType is "gemma2" or "gemma3_text";
        if (gemma) GemmaConfigFields.CheckActivation(f, modelType);
        else
        {
            // Every other supported architecture uses SwiGLU; a different activation would compute a different model.
            string act = f.OptionalString("hidden_act") ?? "silu";
            if (act is not ("silu" or "swish"))
                throw new PeftException($"{f.Source}: \"hidden_act\" is \"{act}\", but {modelType} is supported only with \"silu\"");
        }
        // Gemma's config classes give every size a default (transformers fills keys a file leaves out, and the
        // multimodal text_config leaves several out); the other architectures' sizes are required here.
        int Size(string key) => (gemma ? f.OptionalPositiveInt(key) ?? GemmaConfigFields.DefaultSize(modelType, key) : null)
            ?? f.RequiredPositiveInt(key);

        int hidden = Size("hidden_size");
        int heads = Size("num_attention_heads");
        int kvHeads = f.OptionalPositiveInt("num_key_value_heads") ?? (gemma ? Size("num_key_value_heads") : heads);
        if (heads % kvHeads != 0)
            throw new PeftException(
                $"{f.Source}: \"num_attention_heads\" ({heads}) must be a multiple of \"num_key_value_heads\" ({kvHeads})");

        int? explicitHeadDim = f.OptionalPositiveInt("head_dim");
        int headDim;
        if (explicitHeadDim is int hd) headDim = hd;
        else if (modelType == "qwen3") headDim = 128; // Qwen3Config's default, not hidden/heads
        else if (gemma) headDim = 256;                // Gemma2Config / Gemma3TextConfig default
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
            "gemma2" => (attentionBias, attentionBias, false, false),
            "gemma3_text" => (attentionBias, attentionBias, false, true),   // Gemma3Attention: q_norm, k_norm
            _ => throw new InvalidOperationException(modelType),
        };

        int layers = Size("num_hidden_layers");
        int intermediate = Size("intermediate_size");
        var rope = RopeFields.Of(f);
        if (!(gemma && modelType == "gemma3_text")) rope.CheckSingle(f, modelType);
        // transformers' default RoPE reads partial_rotary_factor for every model; rotating part of the head (Phi-4-mini)
        // is not implemented, so anything but 1 is refused rather than computed as a different model.
        if (rope.PartialRotaryFactor(f) is double prf && prf != 1.0)
            throw new PeftException($"{f.Source}: \"partial_rotary_factor\" is {prf}; only 1.0 (rotary on the whole head) is supported");
        int vocab = Size("vocab_size");
        CheckSizes(f, vocab, hidden, intermediate, layers, heads, headDim);
        var ids = outer is { } o && !f.TryGet("eos_token_id", out _) ? o : f;
        int? bos = ids.OptionalInt("bos_token_id");
        int[] eos = ids.IntOrIntList("eos_token_id");
        int maxPositions = f.OptionalPositiveInt("max_position_embeddings") ?? DefaultMaxPositions(modelType);
        CheckTokenId(f, "bos_token_id", bos, vocab);
        foreach (int e in eos) CheckTokenId(f, "eos_token_id", e, vocab);

        var config = new ModelConfig
        {
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = intermediate,
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            RmsNormEps = (float)PositiveOr(f, "rms_norm_eps", 1e-6),
            RopeTheta = rope.Theta(f, modelType == "gemma3_text" ? 1_000_000 : 10000),
            RopeScaling = ParseRopeScaling(f, rope, modelType, headDim, maxPositions),
            MaxPositions = maxPositions,
            TieWordEmbeddings = f.OptionalBool("tie_word_embeddings") ?? gemma,   // Gemma's config classes default to tied
            QkvBias = qkvBias,
            OutputBias = outputBias,
            MlpBias = mlpBias,
            QkNorm = qkNorm,
            SlidingWindow = ParseSlidingWindow(f, modelType),
            MaxWindowLayers = modelType is "qwen2" or "qwen3" ? f.OptionalInt("max_window_layers") ?? 28 : 0,
            SlidingLayerTypes = ParseLayerTypes(f, layers),
            BosTokenId = bos,
            EosTokenIds = eos,
            TorchDtype = outer is { } od && !f.TryGet("torch_dtype", out _) && !f.TryGet("dtype", out _) ? ParseDtype(od) : ParseDtype(f),
        };
        return gemma ? GemmaConfigFields.Apply(f, config, rope) : config;
    }

    /// <summary>Largest width, head count and vocabulary accepted: far past every real model, and small enough
    /// that no product of them used as a tensor size overflows.</summary>
    public const int MaxWidth = 1 << 20, MaxHeads = 1 << 16, MaxLayers = 1 << 12, MaxVocab = 1 << 24;

    static void CheckSizes(ConfigJsonFields f, int vocab, int hidden, int intermediate, int layers, int heads, int headDim)
    {
        void Max(string key, long value, long max)
        {
            if (value > max) throw new PeftException($"{f.Source}: \"{key}\" is {value:N0}, more than the {max:N0} this tool accepts");
        }
        Max("vocab_size", vocab, MaxVocab);
        Max("hidden_size", hidden, MaxWidth);
        Max("intermediate_size", intermediate, MaxWidth);
        Max("num_hidden_layers", layers, MaxLayers);
        Max("num_attention_heads", heads, MaxHeads);
        Max("head_dim", headDim, MaxWidth);
        if ((long)heads * headDim > MaxWidth)
            throw new PeftException($"{f.Source}: \"num_attention_heads\" × head_dim = {heads:N0} × {headDim:N0} is more than the {MaxWidth:N0} this tool accepts");
        if (headDim % 2 != 0)
            throw new PeftException($"{f.Source}: head_dim {headDim} must be even (rotary embeddings rotate pairs)");
    }

    static void CheckTokenId(ConfigJsonFields f, string key, int? id, int vocab)
    {
        if (id is int v && (v < 0 || v >= vocab))
            throw new PeftException($"{f.Source}: \"{key}\" {v} is outside the vocabulary (vocab_size {vocab})");
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
        "gemma2" => 8192,
        "gemma3_text" => 131072,
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
            case "gemma2":
            case "gemma3_text":
                return f.HasKey("sliding_window") ? f.OptionalPositiveInt("sliding_window") : 4096;   // both config classes: 4096
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

    internal static string ParseDtype(ConfigJsonFields f)
    {
        string key = f.TryGet("torch_dtype", out _) ? "torch_dtype" : "dtype";
        string? v = f.OptionalString(key);
        if (v is null) return "float32";
        if (v.StartsWith("torch.", StringComparison.Ordinal)) v = v["torch.".Length..];
        if (v is not ("float32" or "bfloat16" or "float16"))
            throw new PeftException($"{f.Source}: \"{key}\" is \"{v}\" (supported: float32, bfloat16, float16)");
        return v;
    }

    static RopeScaling? ParseRopeScaling(ConfigJsonFields f, RopeFields rope, string modelType, int headDim, int maxPositions)
    {
        if (rope.Global is not { } r) return null;
        string typeKey = r.TryGet("rope_type", out _) ? "rope_type" : "type";
        string supported = string.Join(", ", SupportedRopeTypes);
        // transformers 5 fills a missing rope_type with "default"; transformers 4 has no default for rope_scaling.
        string type = r.OptionalString(typeKey) ?? (rope.Legacy
            ? throw new PeftException($"{f.Source}: \"rope_scaling\" needs \"rope_type\" (or \"type\"): one of {supported}")
            : "default");
        // Phi3Config maps the names of earlier releases ("su", "yarn") to longrope.
        if (modelType == "phi3" && type is "su" or "yarn") type = "longrope";
        switch (type)
        {
            case "default":
                return null;
            case "longrope":
                return ParseLongRope(f, r, headDim, maxPositions);
            case "linear":
                return new RopeScaling("linear", Factor: r.RequiredPositiveNumber("factor"));
            case "llama3":
                double low = r.RequiredPositiveNumber("low_freq_factor");
                double high = r.RequiredPositiveNumber("high_freq_factor");
                if (high <= low)
                    throw new PeftException(
                        $"{f.Source}: \"{r.KeyName("high_freq_factor")}\" ({high}) must be larger than \"{r.KeyName("low_freq_factor")}\" ({low})");
                int original = r.RequiredPositiveInt("original_max_position_embeddings");
                return new RopeScaling("llama3", r.RequiredPositiveNumber("factor"), low, high, original);
            default:
                throw new PeftException(
                    $"{f.Source}: \"{r.KeyName(typeKey)}\" is \"{type}\", which is not supported (supported: {supported})");
        }
    }

    /// <summary>transformers' longrope (`_compute_longrope_parameters`): the original length is the top-level
    /// `original_max_position_embeddings` (Phi-3) or the one inside rope_scaling; with one, the scaling factor is
    /// max_position_embeddings / original; without, original = max_position_embeddings and `factor` is read.</summary>
    static RopeScaling ParseLongRope(ConfigJsonFields f, ConfigJsonFields r, int headDim, int maxPositions)
    {
        var shortFactor = FactorList(r, "short_factor", headDim / 2);
        var longFactor = FactorList(r, "long_factor", headDim / 2);
        int? original = f.OptionalPositiveInt("original_max_position_embeddings") ?? r.OptionalPositiveInt("original_max_position_embeddings");
        double factor = original is int o ? (double)maxPositions / o : r.OptionalNumber("factor") ?? 1;
        if (!(factor > 0)) throw new PeftException($"{f.Source}: \"{r.KeyName("factor")}\" must be a positive number, found {factor}");
        double? attention = r.OptionalNumber("attention_factor");
        if (attention is double a && !(a > 0))
            throw new PeftException($"{f.Source}: \"{r.KeyName("attention_factor")}\" must be a positive number, found {a}");
        return RopeScaling.LongRope(shortFactor, longFactor, original ?? maxPositions, factor, attention);
    }

    static double[] FactorList(ConfigJsonFields r, string key, int count)
    {
        if (!r.TryGet(key, out var e)) throw r.Missing(key, $"a list of {count} positive numbers (one per rotated frequency, head_dim / 2)");
        if (e.ValueKind != JsonValueKind.Array) throw r.Error(key, $"a list of {count} positive numbers", e);
        if (e.GetArrayLength() != count)
            throw new PeftException($"{r.Source}: \"{r.KeyName(key)}\" has {e.GetArrayLength()} entries; head_dim / 2 = {count} are needed");
        var values = new double[count];
        int i = 0;
        foreach (var v in e.EnumerateArray())
        {
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double x) || !(x > 0) || double.IsInfinity(x))
                throw new PeftException($"{r.Source}: \"{r.KeyName(key)}\"[{i}] is {v.GetRawText()}; expected a positive number");
            values[i++] = x;
        }
        return values;
    }
}
