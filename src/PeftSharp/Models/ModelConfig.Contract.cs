// CONTRACT STUB — the IO work fills the parser without changing the public shape.
using PeftSharp.Kernels;

namespace PeftSharp.Models;

/// <summary>The parts of a Hugging Face config.json that decide the architecture.</summary>
public sealed record ModelConfig
{
    public static readonly string[] SupportedModelTypes = ["llama", "mistral", "qwen2", "qwen3"];

    public required string ModelType { get; init; }
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKvHeads { get; init; }
    /// <summary>Explicit `head_dim` (qwen3, some llama) or hidden_size / num_attention_heads.</summary>
    public required int HeadDim { get; init; }
    public float RmsNormEps { get; init; } = 1e-6f;
    public double RopeTheta { get; init; } = 10000;
    public RopeScaling? RopeScaling { get; init; }
    public int MaxPositions { get; init; } = 2048;
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on q/k/v projections (qwen2; llama with attention_bias).</summary>
    public bool QkvBias { get; init; }
    /// <summary>Bias on o_proj (llama with attention_bias).</summary>
    public bool OutputBias { get; init; }
    /// <summary>Bias on gate/up/down (llama mlp_bias).</summary>
    public bool MlpBias { get; init; }
    /// <summary>RMSNorm on each q and k head before RoPE (qwen3).</summary>
    public bool QkNorm { get; init; }
    /// <summary>mistral/qwen sliding window, if any (recorded; generation within it is exact).</summary>
    public int? SlidingWindow { get; init; }
    public int? BosTokenId { get; init; }
    public int[] EosTokenIds { get; init; } = [];
    /// <summary>`torch_dtype` (or `dtype`) as written: "bfloat16", "float16", "float32".</summary>
    public string TorchDtype { get; init; } = "float32";

    /// <summary>Reads config.json; unsupported model_type lists the supported ones; bad fields name the key.</summary>
    public static ModelConfig Load(string path) => throw new NotImplementedException();
    public static ModelConfig Parse(string json, string sourceName) => throw new NotImplementedException();
    /// <summary>A config.json that HF transformers loads for this architecture.</summary>
    public string ToJson() => throw new NotImplementedException();
}
