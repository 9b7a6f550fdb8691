using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftSharp.Models;
using PeftSharp.Tensors;

namespace PeftSharp.Inspection;

/// <summary>What `peft inspect` reports: architecture, parameters by module kind, dtypes and bytes.</summary>
internal sealed record ModelReport(ModelConfig Config, IReadOnlyList<ModelReport.Group> Groups)
{
    public sealed record Group(string Kind, long Parameters, long Bytes, string DTypes, int Tensors);

    public long TotalParameters => Groups.Sum(g => g.Parameters);
    public long TotalBytes => Groups.Sum(g => g.Bytes);

    /// <summary>Module kind of an HF weight name: q_proj, mlp gate_proj, input_layernorm, embed_tokens, lm_head …</summary>
    public static string KindOf(string name)
    {
        var parts = name.Split('.');
        // model.layers.3.self_attn.q_proj.weight → q_proj.weight ; model.embed_tokens.weight → embed_tokens.weight
        return parts.Length >= 2 ? string.Join('.', parts[^2..]) : name;
    }

    /// <param name="model">The loaded model.</param>
    /// <param name="stored">The dtype of each tensor in the files (norms and biases are held as F32 in memory whatever
    /// the file holds, so the in-memory dtype would misreport a BF16 checkpoint); null: report what is in memory.</param>
    public static ModelReport Of(CausalLM model, Func<string, DType?>? stored = null)
    {
        var dense = model.NamedWeights().Select(w =>
        {
            var dt = stored?.Invoke(w.Name) ?? w.Tensor.DType;
            return (w.Name, Count: w.Tensor.ElementCount, Bytes: w.Tensor.ElementCount * dt.Size(), DType: dt.ToString());
        });
        // 4-bit projections: real storage (packed codes + absmax + nested absmax and maps)
        var quantized = model.QuantizedProjections().Select(q => (Name: q.Name + ".weight", Count: q.Weight.ElementCount, Bytes: q.StorageBytes,
            DType: q.Weight.QuantType.ToString() + (q.Weight.DoubleQuant ? "+DQ" : "")));
        // GPTQ/AWQ projections: their checkpoint bytes (codes, zeros, fp16 scales, g_idx), labelled by scheme
        var packed = model.PackedProjections().Select(q => (Name: q.Name + ".weight", Count: q.Weight.ElementCount,
            Bytes: q.Weight.Config.CheckpointBytes(q.OutFeatures, q.InFeatures),
            DType: $"{q.Weight.Config.Method.ToUpperInvariant()}{q.Weight.Bits}-g{q.Weight.Config.GroupSize}{(q.Weight.Permuted ? "+act" : "")}"));
        var groups = dense.Concat(quantized).Concat(packed)
            .GroupBy(w => KindOf(w.Name))
            .Select(g => new Group(g.Key, g.Sum(w => w.Count), g.Sum(w => w.Bytes),
                string.Join(",", g.Select(w => w.DType).Distinct()), g.Count()))
            .ToList();
        return new ModelReport(model.Config, groups);
    }

    public string ToText()
    {
        var c = Config;
        var sb = new StringBuilder();
        sb.AppendLine($"architecture  {c.ModelType}: {c.NumLayers} layers, hidden {c.HiddenSize}, intermediate {c.IntermediateSize}, " +
                      $"heads {c.NumHeads} (kv {c.NumKvHeads}, head_dim {c.HeadDim}), vocab {c.VocabSize}");
        sb.AppendLine($"              rope theta {c.RopeTheta}{(c.RopeScaling is { } r ? $", scaling {r.Type} ×{r.Factor}" + (r.Type == "longrope" ? $" (short/long factors switch past {r.OriginalMaxPositions}, cos/sin ×{r.AttentionFactor:0.####})" : "") : "")}, " +
                      $"max positions {c.MaxPositions}, {(c.TieWordEmbeddings ? "tied" : "untied")} embeddings" +
                      $"{(c.QkvBias ? ", qkv bias" : "")}{(c.QkNorm ? ", q/k norm" : "")}");
        sb.AppendLine($"{"module",-30} {"tensors",8} {"parameters",14} {"dtype",-10} {"bytes",14}");
        foreach (var g in Groups)
            sb.AppendLine($"{g.Kind,-30} {g.Tensors,8} {g.Parameters,14:N0} {g.DTypes,-10} {Format(g.Bytes),14}");
        sb.Append($"{"total",-30} {Groups.Sum(g => g.Tensors),8} {TotalParameters,14:N0} {"",-10} {Format(TotalBytes),14}");
        return sb.ToString();
    }

    public string ToJson()
    {
        var o = new JsonObject
        {
            ["model_type"] = Config.ModelType,
            ["layers"] = Config.NumLayers,
            ["hidden_size"] = Config.HiddenSize,
            ["parameters"] = TotalParameters,
            ["bytes"] = TotalBytes,
            ["modules"] = new JsonArray(Groups.Select(g => (JsonNode)new JsonObject
            {
                ["kind"] = g.Kind, ["tensors"] = g.Tensors, ["parameters"] = g.Parameters, ["dtype"] = g.DTypes, ["bytes"] = g.Bytes,
            }).ToArray()),
        };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F1} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:F1} KiB",
        _ => $"{bytes} B",
    };
}
