using PeftSharp.Compute;
using PeftSharp.IO.Gguf;
using PeftSharp.Models;
using PeftSharp.Tensors;

namespace PeftSharp.Export;

/// <summary>What an export did that the user should know (dequantized bases, tensors kept at a wider type).</summary>
internal sealed record GgufExportReport(string Path, int Tensors, long Bytes, IReadOnlyList<string> Notes);

/// <summary>
/// Writes a model as a llama.cpp GGUF: the architecture's hyper-parameters, the tokenizer, and every weight under its
/// llama.cpp name in the chosen type. As llama.cpp's converter does, vectors (norms, biases) stay F32, q/k rows are
/// permuted for the "llama" architecture, and a matrix whose rows are not a multiple of 32 is written F16 instead of
/// Q8_0.
/// </summary>
internal static class GgufModelExporter
{
    public static GgmlType ParseType(string s) => s.Trim().ToLowerInvariant() switch
    {
        "f32" => GgmlType.F32,
        "f16" => GgmlType.F16,
        "bf16" => GgmlType.BF16,
        "q8_0" or "q8" => GgmlType.Q8_0,
        _ => throw new PeftException($"--type: expected f32, f16, bf16 or q8_0, got '{s}'"),
    };

    /// <summary>llama_ftype of a file whose matrices are <paramref name="t"/>.</summary>
    static uint FileType(GgmlType t) => t switch
    {
        GgmlType.F32 => 0, GgmlType.F16 => 1, GgmlType.Q8_0 => 7, GgmlType.BF16 => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>Exports <paramref name="model"/> (with <paramref name="mergeAdapter"/> merged in, if given) and the
    /// tokenizer of <paramref name="tokenizerDir"/> to <paramref name="outPath"/>.</summary>
    public static GgufExportReport Export(CausalLM model, ComputeContext ctx, string tokenizerDir, string outPath, GgmlType type,
        string? mergeAdapter = null, string? name = null)
    {
        var c = model.Config;
        string arch = GgufArchitecture.For(c.ModelType);
        var notes = new List<string>();
        if (model.Quantization != null)
            notes.Add($"the base's {model.Quantization.QuantizedModules} 4-bit projections were dequantized to {type} (llama.cpp has no NF4/FP4)");
        if (model.GroupQuantization is { } g)
            notes.Add($"the base's {g.QuantizedModules} {g.Method.ToUpperInvariant()} projections ({g.Scheme}) were dequantized to {type} " +
                      "(llama.cpp has no GPTQ/AWQ packing; its own quantizers re-quantize from the dense weights)");

        var meta = new GgufMetadata(outPath);
        meta.Set("general.type", "model");
        meta.Set("general.name", name ?? Path.GetFileName(Path.GetFullPath(tokenizerDir)));
        GgufArchitecture.WriteHyperParameters(meta, c);
        meta.Set("general.file_type", FileType(type));
        if (type == GgmlType.Q8_0) meta.Set("general.quantization_version", 2u);
        GgufVocabulary.WriteTo(meta, tokenizerDir, c);

        var tensors = new List<GgufTensorSource>();
        if (GgufArchitecture.RopeFrequencyFactors(c) is { } factors)
            tensors.Add(Encode(new WeightRows("rope_freqs.weight", [factors.Length], (_, _, d) => factors.CopyTo(d)), "rope_freqs.weight", GgmlType.F32, 0));
        foreach (var (ropeName, values) in GgufPhi3.RopeFactorTensors(c))
            tensors.Add(Encode(new WeightRows(ropeName, [values.Length], (_, _, d) => values.CopyTo(d)), ropeName, GgmlType.F32, 0));
        if (arch == "phi3") notes.AddRange(GgufPhi3.Notes(c));
        int keptF16 = 0;
        foreach (var w in WeightRows.FromModel(model, mergeAdapter, ctx))
        {
            string gguf = GgufTensorNames.ToGguf(w.HfName, arch) ?? throw new PeftException($"{w.HfName}: no llama.cpp tensor name");
            var t = w.Shape.Length == 1 ? GgmlType.F32 : type;
            if (t == GgmlType.Q8_0 && w.Cols % Q8_0.BlockElements != 0) { t = GgmlType.F16; keptF16++; }
            int permuteHeadDim = GgufArchitecture.PermutesQk(arch) && (w.HfName.EndsWith("q_proj.weight") || w.HfName.EndsWith("k_proj.weight")
                || w.HfName.EndsWith("q_proj.bias") || w.HfName.EndsWith("k_proj.bias")) ? c.HeadDim : 0;
            tensors.Add(Encode(w, gguf, t, permuteHeadDim));
        }
        if (keptF16 > 0) notes.Add($"{keptF16} matrices have rows that are not a multiple of 32 and were written F16 instead of Q8_0");
        GgufWriter.Write(outPath, meta, tensors);
        return new GgufExportReport(outPath, tensors.Count, new FileInfo(outPath).Length, notes);
    }

    /// <summary>A tensor source that converts <paramref name="w"/> to <paramref name="type"/> in chunks of rows
    /// (whole heads when <paramref name="permuteHeadDim"/> &gt; 0, permuting their rows to llama.cpp's order).</summary>
    internal static GgufTensorSource Encode(WeightRows w, string ggufName, GgmlType type, int permuteHeadDim)
    {
        int rows = w.Rows, cols = w.Cols;
        bool vector = w.Shape.Length == 1;
        long elements = (long)rows * cols;
        long bytes = type switch
        {
            GgmlType.F32 => elements * 4,
            GgmlType.F16 or GgmlType.BF16 => elements * 2,
            GgmlType.Q8_0 => Q8_0.ByteSize(elements),
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
        return new GgufTensorSource(ggufName, type, w.Shape, bytes, stream =>
        {
            if (vector)
            {
                var v = new float[cols];
                w.Read(0, 1, v);
                if (permuteHeadDim > 0)
                {
                    var p = new float[cols];
                    QkPermutation.ToGguf(v, p, cols, 1, permuteHeadDim);   // a bias: one value per row
                    v = p;
                }
                var ob = new byte[bytes];
                stream.Write(ob, 0, EncodeInto(v, type, ob));
                return;
            }
            int unit = permuteHeadDim > 0 ? permuteHeadDim : 1;
            int chunk = Math.Max(unit, (1 << 20) / Math.Max(1, cols) / unit * unit);
            var src = new float[Math.Min(rows, chunk) * (long)cols];
            var perm = permuteHeadDim > 0 ? new float[src.Length] : null;
            var outBytes = new byte[type == GgmlType.Q8_0 ? Q8_0.ByteSize(src.Length) : src.Length * (type == GgmlType.F32 ? 4 : 2)];
            for (int r0 = 0; r0 < rows; r0 += chunk)
            {
                int n = Math.Min(chunk, rows - r0);
                var s = src.AsSpan(0, n * cols);
                w.Read(r0, n, s);
                if (perm != null)
                {
                    QkPermutation.ToGguf(s, perm.AsSpan(0, s.Length), n, cols, permuteHeadDim);
                    s = perm.AsSpan(0, s.Length);
                }
                stream.Write(outBytes, 0, EncodeInto(s, type, outBytes));
            }
        });
    }

    static unsafe int EncodeInto(ReadOnlySpan<float> s, GgmlType type, byte[] dst)
    {
        switch (type)
        {
            case GgmlType.F32:
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(s).CopyTo(dst);
                return s.Length * 4;
            case GgmlType.F16:
                fixed (byte* p = dst) DTypeConvert.FromFloat(s, DType.F16, p);
                return s.Length * 2;
            case GgmlType.BF16:
                fixed (byte* p = dst) DTypeConvert.FromFloat(s, DType.BF16, p);
                return s.Length * 2;
            case GgmlType.Q8_0:
                Q8_0.Encode(s, dst);
                return (int)Q8_0.ByteSize(s.Length);
            default: throw new ArgumentOutOfRangeException(nameof(type));
        }
    }
}
