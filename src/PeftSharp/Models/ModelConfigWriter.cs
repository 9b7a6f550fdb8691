using System.Text;
using System.Text.Json;

namespace PeftSharp.Models;

/// <summary><see cref="ModelConfig"/> → a config.json for the matching transformers class. Combinations that class
/// cannot express (e.g. qwen2 without q/k/v bias) are refused, since the written file would describe another model.</summary>
internal static class ModelConfigWriter
{
    public static string ToJson(ModelConfig c)
    {
        CheckExpressible(c);
        var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("architectures");
            w.WriteStringValue(Architecture(c.ModelType));
            w.WriteEndArray();
            w.WriteString("model_type", c.ModelType);
            w.WriteNumber("vocab_size", c.VocabSize);
            w.WriteNumber("hidden_size", c.HiddenSize);
            w.WriteNumber("intermediate_size", c.IntermediateSize);
            w.WriteNumber("num_hidden_layers", c.NumLayers);
            w.WriteNumber("num_attention_heads", c.NumHeads);
            w.WriteNumber("num_key_value_heads", c.NumKvHeads);
            w.WriteNumber("head_dim", c.HeadDim);
            w.WriteString("hidden_act", "silu");
            w.WriteNumber("max_position_embeddings", c.MaxPositions);
            w.WriteNumber("rms_norm_eps", c.RmsNormEps); // float overload: shortest text that reads back as the same float
            WriteFloat(w, "rope_theta", c.RopeTheta);
            WriteRopeScaling(w, c);
            w.WriteBoolean("tie_word_embeddings", c.TieWordEmbeddings);
            switch (c.ModelType)
            {
                case "llama":
                    w.WriteBoolean("attention_bias", c.QkvBias);
                    w.WriteBoolean("mlp_bias", c.MlpBias);
                    break;
                case "mistral":
                case "phi3":
                    WriteNullableInt(w, "sliding_window", c.SlidingWindow);
                    break;
                case "qwen2":
                case "qwen3":
                    if (c.ModelType == "qwen3") w.WriteBoolean("attention_bias", c.QkvBias);
                    w.WriteBoolean("use_sliding_window", c.SlidingWindow is not null);
                    WriteNullableInt(w, "sliding_window", c.SlidingWindow);
                    w.WriteNumber("max_window_layers", c.MaxWindowLayers);
                    break;
            }
            if (c.SlidingLayerTypes is { } types)
            {
                w.WriteStartArray("layer_types");
                foreach (bool sliding in types) w.WriteStringValue(sliding ? "sliding_attention" : "full_attention");
                w.WriteEndArray();
            }
            WriteFloat(w, "attention_dropout", 0.0);
            w.WriteNumber("initializer_range", 0.02);
            WriteNullableInt(w, "bos_token_id", c.BosTokenId);
            if (c.EosTokenIds.Length == 0) w.WriteNull("eos_token_id");
            else if (c.EosTokenIds.Length == 1) w.WriteNumber("eos_token_id", c.EosTokenIds[0]);
            else
            {
                w.WriteStartArray("eos_token_id");
                foreach (int id in c.EosTokenIds) w.WriteNumberValue(id);
                w.WriteEndArray();
            }
            w.WriteString("torch_dtype", c.TorchDtype);
            w.WriteBoolean("use_cache", true);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    public static string Architecture(string modelType) => modelType switch
    {
        "llama" => "LlamaForCausalLM",
        "mistral" => "MistralForCausalLM",
        "qwen2" => "Qwen2ForCausalLM",
        "qwen3" => "Qwen3ForCausalLM",
        "phi3" => "Phi3ForCausalLM",
        _ => throw new PeftException(
            $"model_type \"{modelType}\" is not supported (supported: {string.Join(", ", ModelConfig.SupportedModelTypes)})"),
    };

    static void WriteRopeScaling(Utf8JsonWriter w, ModelConfig c)
    {
        var r = c.RopeScaling;
        if (r is null || r.Type == "default")
        {
            w.WriteNull("rope_scaling");
            return;
        }
        if (r.Type == "longrope")
        {
            WriteLongRope(w, r);
            return;
        }
        w.WriteStartObject("rope_scaling");
        w.WriteString("rope_type", r.Type);
        WriteFloat(w, "factor", r.Factor);
        if (r.Type == "llama3")
        {
            WriteFloat(w, "low_freq_factor", r.LowFreqFactor);
            WriteFloat(w, "high_freq_factor", r.HighFreqFactor);
            w.WriteNumber("original_max_position_embeddings", r.OriginalMaxPositions);
        }
        w.WriteEndObject();
    }

    /// <summary>Phi-3's form: the factor lists and the resolved attention factor in rope_scaling ("type" too, which
    /// Phi3Config of transformers 4.40–4.44 reads), the original length at the top level.</summary>
    static void WriteLongRope(Utf8JsonWriter w, Kernels.RopeScaling r)
    {
        w.WriteStartObject("rope_scaling");
        w.WriteString("rope_type", "longrope");
        w.WriteString("type", "longrope");
        WriteFloat(w, "factor", r.Factor);
        WriteFloat(w, "attention_factor", r.AttentionFactor);
        WriteFloats(w, "short_factor", r.ShortFactor ?? []);
        WriteFloats(w, "long_factor", r.LongFactor ?? []);
        w.WriteEndObject();
        w.WriteNumber("original_max_position_embeddings", r.OriginalMaxPositions);
    }

    static void WriteFloats(Utf8JsonWriter w, string key, IReadOnlyList<double> values)
    {
        w.WriteStartArray(key);
        foreach (double v in values)
        {
            string text = v.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            if (text.IndexOfAny(['.', 'E', 'e']) < 0) text += ".0";
            w.WriteRawValue(text);
        }
        w.WriteEndArray();
    }

    /// <summary>A double that Python reads back as a float (32.0, not 32): transformers' rope validation warns when
    /// `factor` is an int.</summary>
    static void WriteFloat(Utf8JsonWriter w, string key, double v)
    {
        string text = v.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (text.IndexOfAny(['.', 'E', 'e']) < 0) text += ".0";
        w.WritePropertyName(key);
        w.WriteRawValue(text);
    }

    static void WriteNullableInt(Utf8JsonWriter w, string key, int? v)
    {
        if (v is int x) w.WriteNumber(key, x);
        else w.WriteNull(key);
    }

    static void CheckExpressible(ModelConfig c)
    {
        string? problem = c.ModelType switch
        {
            "llama" when c.QkvBias != c.OutputBias => "llama has one attention_bias for q/k/v and o_proj: QkvBias must equal OutputBias",
            "llama" when c.QkNorm => "llama has no q/k norm",
            "llama" when c.SlidingWindow is not null => "llama has no sliding window",
            "mistral" when c.QkvBias || c.OutputBias || c.MlpBias => "mistral has no biases",
            "mistral" when c.QkNorm => "mistral has no q/k norm",
            "qwen2" when !c.QkvBias || c.OutputBias || c.MlpBias => "qwen2 always has q/k/v bias and no other bias",
            "qwen2" when c.QkNorm => "qwen2 has no q/k norm",
            "qwen3" when !c.QkNorm => "qwen3 always has q/k norm",
            "qwen3" when c.QkvBias != c.OutputBias => "qwen3 has one attention_bias for q/k/v and o_proj: QkvBias must equal OutputBias",
            "qwen3" when c.MlpBias => "qwen3 has no MLP bias",
            "phi3" when c.QkvBias || c.OutputBias || c.MlpBias => "phi3 has no biases",
            "phi3" when c.QkNorm => "phi3 has no q/k norm",
            _ => null,
        };
        if (problem is null && c.SlidingLayerTypes is { } t && t.Length != c.NumLayers)
            problem = $"SlidingLayerTypes has {t.Length} entries for {c.NumLayers} layers";
        if (problem is not null) throw new PeftException($"cannot write config.json: {problem}");
        if (c.RopeScaling is { } r && Array.IndexOf(ModelConfigParser.SupportedRopeTypes, r.Type) < 0)
            throw new PeftException($"cannot write config.json: rope scaling type \"{r.Type}\" is not supported " +
                                    $"(supported: {string.Join(", ", ModelConfigParser.SupportedRopeTypes)})");
        Architecture(c.ModelType);
    }
}
