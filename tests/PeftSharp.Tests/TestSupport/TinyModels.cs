using PeftSharp.IO;
using PeftSharp.Kernels;
using PeftSharp.Models;
using PeftSharp.Tensors;

namespace PeftSharp.Tests.TestSupport;

/// <summary>Tiny seeded Llama-family configs and models for whole-model tests.</summary>
internal static class TinyModels
{
    public static ModelConfig Config(string type = "llama", bool tied = false, int layers = 2, int hidden = 32,
        int heads = 4, int kvHeads = 2, int vocab = 61, int intermediate = 48, RopeScaling? rope = null) => WithGemmaFields(new()
    {
        ModelType = type,
        VocabSize = vocab,
        HiddenSize = hidden,
        IntermediateSize = intermediate,
        NumLayers = layers,
        NumHeads = heads,
        NumKvHeads = kvHeads,
        HeadDim = hidden / heads,
        RmsNormEps = 1e-5f,
        RopeTheta = 10000,
        RopeScaling = rope,
        MaxPositions = 128,
        TieWordEmbeddings = tied,
        QkvBias = type == "qwen2",
        QkNorm = type is "qwen3" or "gemma3_text",
        BosTokenId = 1,
        EosTokenIds = [2],
        TorchDtype = "float32",
    });

    /// <summary>gemma2 / gemma3_text: settings that make every Gemma feature act at this size — query_pre_attn_scalar
    /// unlike head_dim, soft caps the random scores and logits reach (gemma2), local and global layers alternating with
    /// different RoPE (gemma3: local base 100, linear scaling on the global layers only). Others unchanged.</summary>
    static ModelConfig WithGemmaFields(ModelConfig c) => c.ModelType switch
    {
        "gemma2" => c with { QueryPreAttnScalar = 6, AttnLogitSoftcapping = 2.5, FinalLogitSoftcapping = 4, SlidingWindowPattern = 2 },
        "gemma3_text" => c with
        {
            QueryPreAttnScalar = 12, RopeLocalTheta = 100, SlidingWindowPattern = 2,
            RopeScaling = c.RopeScaling ?? new RopeScaling("linear", Factor: 2),
        },
        _ => c,
    };

    /// <summary>Random weights with larger-than-usual scale so gradients are well above float32 noise.</summary>
    public static Dictionary<string, Tensor> Weights(ModelConfig c, ulong seed, DType dtype = DType.F32)
    {
        var w = RandomWeights.Create(c, DType.F32, seed);
        var rng = new Random((int)seed + 7);
        foreach (var (name, t) in w)
        {
            var f = t.Floats;
            bool isNorm = name.EndsWith("norm.weight");
            float normCenter = 1f - c.NormWeightOffset;   // Gemma stores w of its (1 + w) norm
            for (int i = 0; i < f.Length; i++)
                f[i] = isNorm ? normCenter + 0.2f * (float)(rng.NextDouble() - 0.5) : f[i] * 8f;
        }
        if (dtype == DType.F32) return w;
        var converted = new Dictionary<string, Tensor>();
        foreach (var (name, t) in w)
        {
            var o = new Tensor(dtype, t.Shape);
            unsafe { DTypeConvert.FromFloat(t.Floats, dtype, o.Data); }
            converted[name] = o;
            t.Dispose();
        }
        return converted;
    }

    public static CausalLM Build(ModelConfig c, Dictionary<string, Tensor> w) =>
        CausalLM.FromTensors(c, n => w.TryGetValue(n, out var t) ? t : null, "test weights");

    /// <summary>Writes config.json + model.safetensors into a fresh temp folder and returns it.</summary>
    public static string WriteFolder(ModelConfig c, Dictionary<string, Tensor> w)
    {
        var dir = Path.Combine(Path.GetTempPath(), "peftsharp-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), c.ToJson());
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), w.Select(kv => (kv.Key, kv.Value)));
        return dir;
    }

    public static int[] RandomIds(Random rng, int n, int vocab)
    {
        var ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = rng.Next(vocab);
        return ids;
    }
}
