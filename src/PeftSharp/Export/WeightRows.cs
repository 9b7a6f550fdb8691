using PeftSharp.Compute;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Tensors;

namespace PeftSharp.Export;

/// <summary>A weight to export, read row by row as float32: a row-major [Rows, Cols] matrix (a vector is one row).</summary>
internal sealed record WeightRows(string HfName, int[] Shape, Action<int, int, Span<float>> Read)
{
    public int Rows => Shape.Length == 1 ? 1 : Shape[0];
    public int Cols => Shape[^1];

    public static unsafe WeightRows Of(string name, Tensor t) => new(name, t.Shape, (row0, rows, dst) =>
    {
        int cols = t.Shape[^1];
        DTypeConvert.ToFloat(t.Data + (long)row0 * cols * t.DType.Size(), t.DType, dst[..(rows * cols)]);
    });

    /// <summary>A norm weight as llama.cpp applies it: plain x·w, so Gemma's stored w is written as 1 + w (what
    /// convert_hf_to_gguf does for gemma2/gemma3).</summary>
    static WeightRows OfNorm(Norm n)
    {
        if (n.Offset == 0) return Of(n.Weight.Name, n.Weight.Value);
        var shifted = n.Values.ToArray().Select(v => v + n.Offset).ToArray();
        return new WeightRows(n.Weight.Name, [shifted.Length], (_, _, dst) => shifted.CopyTo(dst));
    }

    /// <summary>The model's weights in Hugging Face naming. Projections are read through <see cref="IFrozenProjection"/>
    /// (so 4-bit bases come out dequantized); with <paramref name="mergeAdapter"/> each adapted projection is
    /// W + s·B·A (LoRA) or m/‖W + s·B·A‖_row ⊙ (W + s·B·A) (DoRA), formed in float64 per row, as PEFT merges.</summary>
    public static List<WeightRows> FromModel(CausalLM model, string? mergeAdapter, ComputeContext ctx)
    {
        var list = new List<WeightRows> { Of(WeightNames.Embed, model.Embed) };
        foreach (var layer in model.Layers)
        {
            foreach (var n in layer.Norms()) list.Add(OfNorm(n));
            foreach (var p in layer.Projections)
            {
                var frozen = CausalLM.BaseProjection(p);
                var adapter = mergeAdapter != null && p is LoraLinear ll && ll.Adapters.TryGetValue(mergeAdapter, out var ad) ? ad : null;
                list.Add(new WeightRows(p.Name + ".weight", [p.OutFeatures, p.InFeatures],
                    adapter == null ? (row0, rows, dst) => frozen.ReadRows(ctx, row0, rows, dst) : (row0, rows, dst) => MergedRows(ctx, frozen, adapter, row0, rows, dst)));
                var bias = frozen.BiasOrEmpty;
                if (!bias.IsEmpty)
                {
                    var copy = bias.ToArray();
                    list.Add(new WeightRows(p.Name + ".bias", [copy.Length], (_, _, dst) => copy.CopyTo(dst)));
                }
            }
        }
        list.Add(OfNorm(model.FinalNorm));
        if (!model.Tied) list.Add(Of(WeightNames.LmHead, model.LmHead));
        return list;
    }

    static void MergedRows(ComputeContext ctx, IFrozenProjection w, LoraAdapter ad, int row0, int rows, Span<float> dst)
    {
        int inF = w.InFeatures, r = ad.Rank;
        w.ReadRows(ctx, row0, rows, dst);
        var a = ad.A.Value.Floats; var b = ad.B.Value.Floats;
        var m = ad.Magnitude != null ? ad.Magnitude.Value.Floats : Span<float>.Empty;
        var row = new double[inF];
        for (int i = 0; i < rows; i++)
        {
            int o = row0 + i;
            var d = dst.Slice(i * inF, inF);
            for (int k = 0; k < inF; k++)
            {
                double s = 0;
                for (int j = 0; j < r; j++) s += (double)b[o * r + j] * a[j * inF + k];
                row[k] = d[k] + ad.Scaling * s;
            }
            double f = 1;
            if (!m.IsEmpty)
            {
                double norm = Math.Sqrt(row.Sum(x => x * x));
                f = m[o] / norm;
            }
            for (int k = 0; k < inF; k++) d[k] = (float)(f * row[k]);
        }
    }
}
