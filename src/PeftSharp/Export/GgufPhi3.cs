using PeftSharp.IO.Gguf;
using PeftSharp.Kernels;
using PeftSharp.Models;

namespace PeftSharp.Export;

/// <summary>
/// llama.cpp's phi3 architecture (convert_hf_to_gguf's Phi3MiniModel; llama.cpp's phi3 model): the fused projections
/// are stored as Hugging Face holds them — attn_qkv rows q | k | v, ffn_up rows gate | up (its SWIGLU takes the first
/// half as the gate) — with NeoX RoPE, so no q/k permutation. attn_output is n_embd × n_embd, so heads × head_dim must
/// equal hidden_size. LongRoPE is written as F32 tensors rope_factors_short / rope_factors_long (head_dim / 2 divisors
/// of the angle), phi3.rope.scaling.attn_factor (the cos/sin multiplier) and original_context_length; llama.cpp takes
/// the long set when its context size exceeds that length, where transformers (and PeftSharp) decide by the sequence
/// length. llama.cpp disables Phi-3's sliding window when it loads the file (a warning): attention is full. Reading a
/// phi3 file back takes the same keys and tensors.
/// </summary>
internal static class GgufPhi3
{
    public const string ShortFactors = "rope_factors_short.weight", LongFactors = "rope_factors_long.weight";

    /// <summary>Refuses, naming the config key, what llama.cpp's phi3 cannot load or would compute differently.</summary>
    public static void RefuseUnrepresentable(ModelConfig c)
    {
        if (c.NumHeads * c.HeadDim != c.HiddenSize)
            throw new PeftException($"cannot export phi3 to GGUF: \"head_dim\" {c.HeadDim} × \"num_attention_heads\" {c.NumHeads} " +
                $"is not \"hidden_size\" {c.HiddenSize} (llama.cpp's phi3 attention output is hidden_size × hidden_size)");
        if (c.RopeScaling?.Type == "llama3")
            throw new PeftException("cannot export phi3 to GGUF: \"rope_scaling\" type llama3 (llama.cpp's phi3 has no rope_freqs tensor; " +
                "it takes longrope, linear or none)");
    }

    /// <summary>The phi3-only keys (the shared ones are written by <see cref="GgufArchitecture"/>).</summary>
    public static void WriteHyperParameters(GgufMetadata m, ModelConfig c)
    {
        var longRope = c.RopeScaling is { Type: "longrope" } r ? r : null;
        m.Set("phi3.rope.scaling.original_context_length", (uint)(longRope?.OriginalMaxPositions ?? c.MaxPositions));
        if (longRope != null) m.Set("phi3.rope.scaling.attn_factor", (float)longRope.AttentionFactor);
    }

    /// <summary>LongRoPE's two divisor sets as llama.cpp's tensors (none without longrope).</summary>
    public static IEnumerable<(string Name, float[] Values)> RopeFactorTensors(ModelConfig c)
    {
        if (c.RopeScaling is not { Type: "longrope" } r) yield break;
        yield return (LongFactors, Floats(r.LongFactor!, c));
        yield return (ShortFactors, Floats(r.ShortFactor!, c));
    }

    static float[] Floats(IReadOnlyList<double> factors, ModelConfig c)
    {
        if (factors.Count != c.HeadDim / 2)
            throw new PeftException($"cannot export phi3 to GGUF: a longrope factor list has {factors.Count} entries, head_dim / 2 = {c.HeadDim / 2} are needed");
        return factors.Select(f => (float)f).ToArray();
    }

    /// <summary>True for a tensor that is LongRoPE configuration rather than a weight.</summary>
    public static bool IsRopeFactors(string ggufName) => ggufName is ShortFactors or LongFactors;

    /// <summary>LongRoPE read back from a phi3 file (null when it has no factor tensors): the factor sets, the original
    /// length, the extension ratio context_length / original and the stored attn_factor.</summary>
    public static RopeScaling? ReadLongRope(GgufFile f, int headDim, int maxPositions)
    {
        bool hasShort = f.Contains(ShortFactors), hasLong = f.Contains(LongFactors);
        if (!hasShort && !hasLong) return null;
        if (!hasShort || !hasLong) throw new PeftException($"{f.Path}: LongRoPE needs both {ShortFactors} and {LongFactors}; one is missing");
        int original = f.Metadata.RequireInt("phi3.rope.scaling.original_context_length");
        if (original <= 0) throw new PeftException($"{f.Path}: phi3.rope.scaling.original_context_length must be positive, got {original}");
        double? attention = f.Metadata.GetFloat("phi3.rope.scaling.attn_factor");
        if (attention is double a && !(a > 0)) throw new PeftException($"{f.Path}: phi3.rope.scaling.attn_factor must be positive, got {a}");
        return RopeScaling.LongRope(ReadFactors(f, ShortFactors, headDim / 2), ReadFactors(f, LongFactors, headDim / 2),
            original, (double)maxPositions / original, attention);
    }

    static double[] ReadFactors(GgufFile f, string name, int count)
    {
        var info = f.Tensor(name);
        if (info.Type != GgmlType.F32 || info.Dims.Length != 1 || info.Dims[0] != count)
            throw new PeftException($"{f.Path}: tensor '{name}' is {info.Type} [{string.Join(", ", info.Dims)}]; expected F32 [{count}] (head_dim / 2)");
        var values = new float[count];
        f.ReadBytes(info, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        if (values.Any(v => !(v > 0) || float.IsInfinity(v)))
            throw new PeftException($"{f.Path}: tensor '{name}' holds a factor that is not a finite positive number");
        return values.Select(v => (double)v).ToArray();
    }

    /// <summary>What the user should know about running the file in llama.cpp instead of transformers.</summary>
    public static IEnumerable<string> Notes(ModelConfig c)
    {
        if (c.SlidingWindow is int sw && sw < c.MaxPositions)   // Phi-3.5's 262144 never binds at 131072 positions
            yield return $"llama.cpp disables Phi-3's sliding window ({sw} tokens) and attends to every earlier position: " +
                         $"its outputs equal this model's for contexts up to {sw} tokens and differ beyond";
        if (c.RopeScaling is { Type: "longrope" } r)
            yield return $"LongRoPE: llama.cpp uses the long factors whenever its context size (-c) exceeds {r.OriginalMaxPositions}, " +
                         $"transformers and PeftSharp only for sequences longer than {r.OriginalMaxPositions} tokens; " +
                         $"run llama.cpp with -c {r.OriginalMaxPositions} or less to get the short-factor outputs";
    }
}
