using PeftSharp.IO.Gguf;
using PeftSharp.Models;

namespace PeftSharp.Export;

/// <summary>
/// The gemma2 / gemma3 keys of llama.cpp (llama-model.cpp): gemma2 reads both soft caps from metadata; both
/// architectures fix what the Hugging Face config states explicitly — the local/global pattern (gemma2: even layers
/// local; gemma3: five local, then one global), gemma3's local RoPE base 10000, and the attention scale
/// 1/√head_dim (1/√(hidden/heads) for the 27B sizes). A config that differs would run as another model in llama.cpp,
/// so it is refused by name. Reading a gemma file back restores those fixed settings (and llama.cpp's 27B attention
/// scale rule) as the Hugging Face config states them.
/// </summary>
internal static class GgufGemma
{
    public static void WriteHyperParameters(GgufMetadata m, string arch, ModelConfig c)
    {
        string? problem = null;
        double expectedScalar = c.HeadDim;
        if (problem == null && c.QueryPreAttnScalar is double s && s != expectedScalar && s != (double)c.HiddenSize / c.NumHeads)
            problem = $"query_pre_attn_scalar {s} (llama.cpp scales by 1/√head_dim = 1/√{c.HeadDim})";
        if (problem == null && c.QkvBias) problem = "attention_bias (llama.cpp's gemma has no projection biases)";
        int pattern = arch == "gemma2" ? 2 : 6;
        if (problem == null && Enumerable.Range(0, c.NumLayers).Any(l => c.GemmaLocalLayer(l) != (l % pattern < pattern - 1)))
            problem = $"a local/global layer pattern other than llama.cpp's {(arch == "gemma2" ? "alternating one" : "5 local : 1 global")}";
        if (problem == null && arch == "gemma2" && (c.AttnLogitSoftcapping == null || c.FinalLogitSoftcapping == null))
            problem = "gemma2 without both soft caps (llama.cpp then caps at 50 and 30)";
        if (arch == "gemma3")
        {
            if (problem == null && c.RopeLocalTheta is double lt && lt != 10000) problem = $"rope_local_base_freq {lt} (llama.cpp uses 10000)";
            if (problem == null && (c.AttnLogitSoftcapping != null || c.FinalLogitSoftcapping != null))
                problem = "soft-capping on gemma3 (llama.cpp's gemma3 has none)";
        }
        if (problem != null) throw new PeftException($"cannot export {c.ModelType} to GGUF: {problem}");
        if (arch == "gemma2")
        {
            if (c.AttnLogitSoftcapping is double a) m.Set("gemma2.attn_logit_softcapping", (float)a);
            if (c.FinalLogitSoftcapping is double f) m.Set("gemma2.final_logit_softcapping", (float)f);
        }
    }

    /// <summary>
    /// The Gemma settings of a config read from a gemma2/gemma3 GGUF, as llama.cpp runs the file: the soft caps from
    /// metadata (gemma2; llama.cpp's defaults 50 and 30 when absent) or none (gemma3), the fixed layer patterns, gemma3's
    /// local RoPE base 10000, and the attention scale 1/√head_dim, or 1/√(hidden/heads) for the 27B sizes (gemma2 with 46
    /// layers, gemma3 with 62), which llama.cpp picks by layer count.
    /// </summary>
    public static ModelConfig ReadHyperParameters(GgufMetadata m, string arch, ModelConfig c)
    {
        bool g2 = arch == "gemma2";
        bool large = c.NumLayers == (g2 ? 46 : 62);
        return c with
        {
            QueryPreAttnScalar = large ? (double)c.HiddenSize / c.NumHeads : c.HeadDim,
            AttnLogitSoftcapping = g2 ? m.GetFloat("gemma2.attn_logit_softcapping") ?? 50 : null,
            FinalLogitSoftcapping = g2 ? m.GetFloat("gemma2.final_logit_softcapping") ?? 30 : null,
            RopeLocalTheta = g2 ? null : 10000,
            SlidingWindowPattern = g2 ? 2 : 6,
        };
    }

    /// <summary>True for a norm weight that llama.cpp's gemma files store as 1 + w.</summary>
    public static bool IsShiftedNorm(string hfName) => hfName.EndsWith("norm.weight", StringComparison.Ordinal);
}
