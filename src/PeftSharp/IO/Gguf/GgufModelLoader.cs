using PeftSharp.Export;
using PeftSharp.Kernels;
using PeftSharp.Models;
using PeftSharp.Tensors;

namespace PeftSharp.IO.Gguf;

/// <summary>
/// Reads a llama.cpp GGUF model (llama, qwen2, qwen3, phi3, gemma2, gemma3 architectures; F32, F16, BF16 and Q8_0
/// tensors) back into this project's form: a <see cref="ModelConfig"/> from the <c>{arch}.*</c> keys (phi3's LongRoPE
/// from its factor tensors; Gemma's fixed settings as llama.cpp runs them, its 1 + w norms back to w) and the Hugging Face-named tensors, with llama's q/k rows returned to HF order. F32/F16/BF16 tensors keep their type; Q8_0 is decoded exactly to F32 (q·d is
/// exact in float32, not always in a 16-bit type).
/// </summary>
internal static class GgufModelLoader
{
    /// <summary>True for a path this loader handles (an existing *.gguf file).</summary>
    public static bool IsGguf(string path) => path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) && File.Exists(path);

    public static ModelConfig ReadConfig(GgufFile f)
    {
        var m = f.Metadata;
        string arch = m.RequireString("general.architecture");
        string modelType = arch switch
        {
            "llama" or "qwen2" or "qwen3" or "phi3" or "gemma2" => arch,
            "gemma3" => "gemma3_text",
            _ => throw new PeftException($"{f.Path}: general.architecture '{arch}' is not supported (llama, qwen2, qwen3, phi3, gemma2, gemma3)"),
        };
        if (m.GetString("general.type") is { } gt && gt != "model")
            throw new PeftException($"{f.Path}: general.type is '{gt}'; this is not a model file (an adapter loads with --adapter on its base)");
        int heads = m.RequireInt($"{arch}.attention.head_count");
        int hidden = m.RequireInt($"{arch}.embedding_length");
        if (heads <= 0 || hidden <= 0) throw new PeftException($"{f.Path}: {arch}.attention.head_count and {arch}.embedding_length must be positive");
        var embd = f.Tensor("token_embd.weight");
        RopeScaling? rope = null;
        if (m.GetString($"{arch}.rope.scaling.type") is { } rt && rt != "none")
        {
            if (rt != "linear") throw new PeftException($"{f.Path}: {arch}.rope.scaling.type '{rt}' is not supported (none or linear)");
            rope = new RopeScaling("linear", m.GetFloat($"{arch}.rope.scaling.factor") ?? 1);
        }
        if (f.Contains("rope_freqs.weight"))
            throw new PeftException($"{f.Path}: rope_freqs.weight (llama3 RoPE scaling) cannot be mapped back to rope_scaling; load the Hugging Face folder instead");
        int maxPositions = m.GetInt($"{arch}.context_length") ?? 2048;
        int headDim = m.GetInt($"{arch}.attention.key_length") ?? hidden / heads;
        if (arch == "phi3" && GgufPhi3.ReadLongRope(f, headDim, maxPositions) is { } longRope)
        {
            if (rope != null) throw new PeftException($"{f.Path}: both {arch}.rope.scaling.type '{rope.Type}' and LongRoPE factor tensors");
            rope = longRope;
        }
        int? eos = m.GetInt("tokenizer.ggml.eos_token_id");
        var config = new ModelConfig
        {
            ModelType = modelType,
            VocabSize = checked((int)embd.Dims[1]),
            HiddenSize = hidden,
            IntermediateSize = m.RequireInt($"{arch}.feed_forward_length"),
            NumLayers = m.RequireInt($"{arch}.block_count"),
            NumHeads = heads,
            NumKvHeads = m.GetInt($"{arch}.attention.head_count_kv") ?? heads,
            HeadDim = headDim,
            RmsNormEps = (float)(m.GetFloat($"{arch}.attention.layer_norm_rms_epsilon") ?? 1e-6),
            RopeTheta = m.GetFloat($"{arch}.rope.freq_base") ?? 10000,
            RopeScaling = rope,
            MaxPositions = maxPositions,
            TieWordEmbeddings = !f.Contains("output.weight"),
            QkvBias = f.Contains("blk.0.attn_q.bias"),
            OutputBias = f.Contains("blk.0.attn_output.bias"),
            MlpBias = f.Contains("blk.0.ffn_gate.bias"),
            QkNorm = f.Contains("blk.0.attn_q_norm.weight"),
            // convert_hf_to_gguf writes phi3's window as 0 when the config has none
            SlidingWindow = m.GetInt($"{arch}.attention.sliding_window") is int sw && sw > 0 ? sw : null,
            BosTokenId = m.GetInt("tokenizer.ggml.bos_token_id"),
            EosTokenIds = eos is { } e ? [e] : [],
            TorchDtype = embd.Type switch { GgmlType.BF16 => "bfloat16", GgmlType.F16 => "float16", _ => "float32" },
        };
        return config.IsGemma ? GgufGemma.ReadHyperParameters(m, arch, config) : config;
    }

    /// <summary>All tensors of the file under their HF names (owned; the caller disposes them). Unknown names are an
    /// error rather than silently dropped.</summary>
    public static Dictionary<string, Tensor> ReadTensors(GgufFile f, ModelConfig c)
    {
        string arch = GgufArchitecture.For(c.ModelType);
        bool permute = GgufArchitecture.PermutesQk(arch);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var info in f.Tensors)
            {
                if (arch == "phi3" && GgufPhi3.IsRopeFactors(info.Name)) continue;   // read into the config
                string hf = GgufTensorNames.ToHf(info.Name, arch)
                    ?? throw new PeftException($"{f.Path}: tensor '{info.Name}' has no place in a {c.ModelType} model");
                bool qk = permute && (hf.EndsWith("q_proj.weight") || hf.EndsWith("k_proj.weight") || hf.EndsWith("q_proj.bias") || hf.EndsWith("k_proj.bias"));
                var t = Read(f, info, qk ? c.HeadDim : 0);
                result[hf] = c.IsGemma && GgufGemma.IsShiftedNorm(hf) ? Unshifted(t) : t;
            }
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>Gemma's stored norm weight w from llama.cpp's 1 + w, in float32 (consumes <paramref name="shifted"/>).</summary>
    static unsafe Tensor Unshifted(Tensor shifted)
    {
        using (shifted)
        {
            var values = new float[shifted.ElementCount];
            DTypeConvert.ToFloat(shifted.Data, shifted.DType, values);
            var t = new Tensor(DType.F32, shifted.Shape);
            var dst = t.Floats;
            for (int i = 0; i < values.Length; i++) dst[i] = values[i] - 1f;
            return t;
        }
    }

    static unsafe Tensor Read(GgufFile f, GgufTensorInfo info, int permuteHeadDim)
    {
        if (!GgmlTypeInfo.IsReadable(info.Type))
            throw new PeftException($"{f.Path}: tensor '{info.Name}' is {info.Type}; this loader reads F32, F16, BF16 and Q8_0");
        if (info.Dims.Length > 2) throw new PeftException($"{f.Path}: tensor '{info.Name}' has {info.Dims.Length} dimensions, expected 1 or 2");
        var shape = info.RowMajorShape;
        var dtype = info.Type switch { GgmlType.F16 => DType.F16, GgmlType.BF16 => DType.BF16, _ => DType.F32 };
        var t = new Tensor(dtype, shape);
        try
        {
            if (info.Type == GgmlType.Q8_0)
            {
                var raw = new byte[info.ByteLength];
                f.ReadBytes(info, raw);
                Q8_0.Decode(raw, t.Floats);
            }
            else f.ReadBytes(info, new Span<byte>(t.Data, checked((int)t.ByteLength)));
            if (permuteHeadDim > 0) UnpermuteRows(t, permuteHeadDim, f.Path, info.Name);
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    static unsafe void UnpermuteRows(Tensor t, int headDim, string path, string name)
    {
        int rows = t.Rank == 1 ? t.Shape[0] : t.Shape[0], cols = t.Rank == 1 ? 1 : t.Shape[1];
        if (rows % headDim != 0) throw new PeftException($"{path}: tensor '{name}' has {rows} rows, not a multiple of head_dim {headDim}");
        int es = t.DType.Size();
        var src = new Span<byte>(t.Data, checked((int)t.ByteLength)).ToArray();
        var dst = new Span<byte>(t.Data, src.Length);
        int rowBytes = cols * es;
        for (int r = 0; r < rows; r++)
            src.AsSpan(r * rowBytes, rowBytes).CopyTo(dst.Slice(QkPermutation.HfRowOf(r, headDim) * rowBytes, rowBytes));
    }

    /// <summary>Loads a GGUF model file as a <see cref="CausalLM"/>; the returned tensors are owned by the model.</summary>
    public static (CausalLM Model, List<Tensor> Owned) Load(string path, Quantization.QuantizeOptions? quantize, Compute.ComputeContext? compute)
    {
        using var f = GgufFile.Open(path);
        var config = ReadConfig(f);
        var tensors = ReadTensors(f, config);
        try
        {
            var model = CausalLM.FromTensors(config, n => tensors.GetValueOrDefault(n), path, quantize,
                (name, t) => { if (tensors.Remove(name)) t.Dispose(); }, compute);
            return (model, tensors.Values.ToList());
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
    }
}
