using System.Text.Json;

namespace PeftSharp.Models;

/// <summary>
/// The Gemma-only keys of config.json, with the defaults of transformers' Gemma2Config and Gemma3TextConfig, and the
/// multimodal gemma3 config (Gemma3Config), whose `text_config` is the language model this library runs.
/// </summary>
internal static class GemmaConfigFields
{
    /// <summary>The size defaults of the config classes (the multimodal text_config relies on them).</summary>
    public static int? DefaultSize(string modelType, string key) => key switch
    {
        "vocab_size" => modelType == "gemma2" ? 256_000 : 262_208,
        "hidden_size" => 2304,
        "intermediate_size" => 9216,
        "num_hidden_layers" => 26,
        "num_attention_heads" => 8,
        "num_key_value_heads" => 4,
        _ => null,
    };

    /// <summary>The MLP activation is `hidden_activation` (default gelu_pytorch_tanh); `hidden_act` is not read by
    /// Gemma2MLP / Gemma3MLP. Anything but the tanh GELU would compute a different model.</summary>
    public static void CheckActivation(ConfigJsonFields f, string modelType)
    {
        string act = f.OptionalString("hidden_activation") ?? "gelu_pytorch_tanh";
        if (act is not ("gelu_pytorch_tanh" or "gelu_new"))   // gelu_new is the same tanh formula
            throw new PeftException($"{f.Source}: \"{f.KeyName("hidden_activation")}\" is \"{act}\", but {modelType} is supported only with \"gelu_pytorch_tanh\"");
    }

    /// <summary>Adds the Gemma fields to a config parsed by the common path.</summary>
    public static ModelConfig Apply(ConfigJsonFields f, ModelConfig c, RopeFields rope)
    {
        bool g2 = c.ModelType == "gemma2";
        // An explicit null turns a soft cap off; a missing key takes the class default (gemma2 50 / 30, gemma3 none).
        double? Cap(string key, double? fallback)
        {
            if (!f.HasKey(key)) return fallback;
            double? v = f.OptionalNumber(key);
            if (v is <= 0) throw new PeftException($"{f.Source}: \"{f.KeyName(key)}\" must be a positive number or null, found {v}");
            return v;
        }
        double scalar = f.OptionalNumber("query_pre_attn_scalar") ?? 256;
        if (scalar <= 0) throw new PeftException($"{f.Source}: \"{f.KeyName("query_pre_attn_scalar")}\" must be a positive number, found {scalar}");
        int pattern = g2 ? 2 : f.OptionalPositiveInt("sliding_window_pattern") ?? 6;
        double? localTheta = g2 ? null : rope.LocalTheta(f);
        return c with
        {
            QueryPreAttnScalar = scalar,
            AttnLogitSoftcapping = Cap("attn_logit_softcapping", g2 ? 50.0 : null),
            FinalLogitSoftcapping = Cap("final_logit_softcapping", g2 ? 30.0 : null),
            RopeLocalTheta = localTheta,
            SlidingWindowPattern = pattern,
        };
    }

    /// <summary>The multimodal gemma3 config: its `text_config` (a gemma3_text config) is parsed; the vision tower's
    /// config and weights are ignored (see <see cref="ModelConfig.TextOfMultimodal"/>).</summary>
    public static ModelConfig TextOfMultimodal(ConfigJsonFields f, Func<ConfigJsonFields, string, ConfigJsonFields?, ModelConfig> parse)
    {
        if (!f.TryGet("text_config", out var text) || text.ValueKind != JsonValueKind.Object)
            throw new PeftException($"{f.Source}: model_type \"gemma3\" (multimodal) needs a \"text_config\" object: the language model this tool loads");
        var tf = new ConfigJsonFields(text, f.Source, "text_config.");
        string inner = tf.OptionalString("model_type") ?? "gemma3_text";
        if (inner != "gemma3_text")
            throw new PeftException($"{f.Source}: \"text_config.model_type\" is \"{inner}\"; expected \"gemma3_text\"");
        return parse(tf, "gemma3_text", f) with { TextOfMultimodal = true };
    }

    /// <summary>Where a multimodal Gemma 3 checkpoint keeps a text-model tensor: "language_model.model.…" (transformers
    /// before 4.52) or "model.language_model.…" (later); lm_head is tied. Tried after the plain name.</summary>
    public static IEnumerable<string> MultimodalNames(string name)
    {
        if (!name.StartsWith("model.", StringComparison.Ordinal)) yield break;
        string rest = name["model.".Length..];
        yield return "language_model.model." + rest;
        yield return "model.language_model." + rest;
    }
}
