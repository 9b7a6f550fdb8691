using System.Text.Json;

namespace PeftSharp.Models;

/// <summary>The Gemma keys of a written config.json (Gemma2Config / Gemma3TextConfig); a multimodal gemma3 model is
/// written as its text model (gemma3_text), which is what this library computes and saves.</summary>
internal static class GemmaConfigWriter
{
    public static void Write(Utf8JsonWriter w, ModelConfig c)
    {
        w.WriteString("hidden_activation", "gelu_pytorch_tanh");
        w.WriteBoolean("attention_bias", c.QkvBias);
        ModelConfigWriter.WriteFloat(w, "query_pre_attn_scalar", c.QueryPreAttnScalar ?? c.HeadDim);
        WriteNullableFloat(w, "attn_logit_softcapping", c.AttnLogitSoftcapping);
        WriteNullableFloat(w, "final_logit_softcapping", c.FinalLogitSoftcapping);
        ModelConfigWriter.WriteNullableInt(w, "sliding_window", c.SlidingWindow);
        if (c.ModelType == "gemma3_text")
        {
            w.WriteNumber("sliding_window_pattern", c.SlidingWindowPattern);
            ModelConfigWriter.WriteFloat(w, "rope_local_base_freq", c.RopeLocalTheta ?? c.RopeTheta);
        }
    }

    static void WriteNullableFloat(Utf8JsonWriter w, string key, double? v)
    {
        if (v is double x) ModelConfigWriter.WriteFloat(w, key, x);
        else w.WriteNull(key);
    }
}
