using System.Text.Json.Nodes;
using PeftSharp.Compute;
using PeftSharp.Models;
using PeftSharp.Quantization;
using PeftSharp.Tensors;

namespace PeftSharp.IO;

/// <summary>Writes a full Hugging Face model folder: config.json, sharded safetensors, tokenizer files.</summary>
internal static class HfCheckpoint
{
    public const long DefaultShardBytes = 5L << 30;   // transformers' default max_shard_size "5GB"

    static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "tokenizer.model"];

    /// <summary>
    /// Weights in <paramref name="dtype"/> (tensors already in it are written as they are, others converted one at a
    /// time), config.json with that torch_dtype, and the tokenizer files copied from <paramref name="sourceDir"/>.
    /// 4-bit projections are written in bitsandbytes' serialized form (weight, absmax, quant_map, nested_*, quant_state)
    /// and config.json gets transformers' quantization_config, so transformers + bitsandbytes and our loader read it.
    /// GPTQ/AWQ projections are written dense in <paramref name="dtype"/> (dequantized, plus any merged adapter).
    /// </summary>
    public static void Write(string dir, CausalLM model, string? sourceDir, DType dtype, long maxShardBytes = DefaultShardBytes,
        ComputeContext? compute = null)
    {
        Directory.CreateDirectory(dir);
        var converted = new List<Tensor>();
        try
        {
            var tensors = new List<(string, Tensor)>();
            foreach (var (name, t) in model.NamedWeights())
            {
                if (t.DType == dtype) { tensors.Add((name, t)); continue; }
                var c = new Tensor(dtype, t.Shape);
                unsafe
                {
                    var tmp = new float[Math.Min(t.ElementCount, 1 << 20)];
                    for (long off = 0; off < t.ElementCount; off += tmp.Length)
                    {
                        int len = (int)Math.Min(tmp.Length, t.ElementCount - off);
                        DTypeConvert.ToFloat(t.Data + off * t.DType.Size(), t.DType, tmp.AsSpan(0, len));
                        DTypeConvert.FromFloat(tmp.AsSpan(0, len), dtype, c.Data + off * dtype.Size());
                    }
                }
                converted.Add(c);
                tensors.Add((name, c));
            }
            foreach (var q in model.QuantizedProjections())
                foreach (var (name, t) in BnbQuantState.ToTensors(q.Name, q.Weight))
                {
                    converted.Add(t);
                    tensors.Add((name, t));
                }
            // GPTQ/AWQ projections are written dense: merged ones hold dequant(W) + ΔW, the others dequant(W) (nothing here
            // re-runs GPTQ or AWQ, so a written checkpoint never claims their packing)
            if (model.GroupQuantization != null)
            {
                using var ctx = compute == null ? ComputeContext.CreateCpu(new ComputeOptions { Threads = 1 }) : null;
                foreach (var p in model.PackedProjections())
                {
                    var t = DenseRows(ctx ?? compute!, p, dtype);
                    converted.Add(t);
                    tensors.Add((p.Name + ".weight", t));
                }
            }
            SafetensorsWriter.WriteSharded(dir, tensors, maxShardBytes, new Dictionary<string, string> { ["format"] = "pt" });
        }
        finally { foreach (var c in converted) c.Dispose(); }

        var config = model.Config with { TorchDtype = dtype switch { DType.BF16 => "bfloat16", DType.F16 => "float16", _ => "float32" } };
        string json = config.ToJson();
        if (model.Quantization != null)
        {
            var node = JsonNode.Parse(json)!.AsObject();
            node["quantization_config"] = model.Quantization.Options.ToQuantizationConfig(config.TorchDtype);
            json = node.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        }
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), json);
        if (sourceDir != null && Path.GetFullPath(sourceDir) != Path.GetFullPath(dir))
            foreach (var f in TokenizerFiles)
            {
                var src = Path.Combine(sourceDir, f);
                // Through a temp file and a rename: a full disk must not leave a truncated tokenizer.json under its name.
                if (File.Exists(src))
                    AtomicFile.Write(Path.Combine(dir, f), s => { using var from = File.OpenRead(src); from.CopyTo(s); });
            }
    }

    /// <summary>A packed projection's weight, [out, in] in <paramref name="dtype"/>, converted a chunk of rows at a time.</summary>
    static unsafe Tensor DenseRows(ComputeContext ctx, Nn.IntGroupLinear p, DType dtype)
    {
        var t = new Tensor(dtype, p.OutFeatures, p.InFeatures);
        int chunk = Math.Max(1, (1 << 20) / p.InFeatures);
        var rows = new float[(long)chunk * p.InFeatures];
        for (int r0 = 0; r0 < p.OutFeatures; r0 += chunk)
        {
            int n = Math.Min(chunk, p.OutFeatures - r0);
            var span = rows.AsSpan(0, n * p.InFeatures);
            p.ReadRows(ctx, r0, n, span);
            DTypeConvert.FromFloat(span, dtype, t.Data + (long)r0 * p.InFeatures * dtype.Size());
        }
        return t;
    }
}
