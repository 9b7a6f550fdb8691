using PeftSharp.Kernels;
using PeftSharp.Tensors;

namespace PeftSharp.Peft;

// Merge, unmerge, DoRA magnitude init and adapter combination: the operations that form B·A explicitly.
public sealed unsafe partial class LoraLinear
{
    /// <summary>ΔW = s·B·A (out, in), float32.</summary>
    float[] Delta(LoraAdapter ad)
    {
        int r = ad.Rank, inF = InFeatures, outF = OutFeatures;
        var delta = new float[outF * inF];
        fixed (float* d = delta)
            Gemm.Multiply(false, false, outF, inF, r, ad.Scaling, ad.B.Value.AsMatrix(), ad.A.Value.AsMatrix(), 0f, d, inF);
        return delta;
    }

    /// <summary>DoRA init: m = ‖W + s·B·A‖_row (= ‖W‖_row when B = 0).</summary>
    public void InitializeMagnitude(string adapterName)
    {
        var ad = _adapters[adapterName];
        var normSq = RowNormsSquared(ad);
        var m = ad.Magnitude!.Value.Floats;
        for (int i = 0; i < m.Length; i++) m[i] = (float)Math.Sqrt(normSq[i]);
    }

    public void Merge(string adapterName)
    {
        var ad = _adapters[adapterName];
        var delta = Delta(ad);
        if (ad.UseDora)
        {
            // W' = f ⊙ (W + ΔW), f = m / ‖W + ΔW‖_row: add (f − 1)·W + f·ΔW; keep f for an exact unmerge.
            var normSq = RowNormsSquared(ad);
            var m = ad.Magnitude!.Value.Floats;
            var f = new float[OutFeatures];
            var row = new float[InFeatures];
            for (int i = 0; i < OutFeatures; i++)
            {
                f[i] = (float)(m[i] / Math.Sqrt(normSq[i]));
                Frozen.ReadRows(i, 1, row);
                var d = delta.AsSpan(i * InFeatures, InFeatures);
                for (int k = 0; k < InFeatures; k++) d[k] = (f[i] - 1) * row[k] + f[i] * d[k];
            }
            _mergedDoraFactor[adapterName] = f;
        }
        Frozen.AddToWeight(delta, 1f);
        _baseRowNormSq = null;
        _merged.Add(adapterName);
    }

    public void Unmerge(string adapterName)
    {
        var ad = _adapters[adapterName];
        var delta = Delta(ad);
        if (ad.UseDora)
        {
            // W = W'/f − ΔW: add W'·(1/f − 1) − ΔW.
            var f = _mergedDoraFactor[adapterName];
            var row = new float[InFeatures];
            for (int i = 0; i < OutFeatures; i++)
            {
                Frozen.ReadRows(i, 1, row);
                var d = delta.AsSpan(i * InFeatures, InFeatures);
                for (int k = 0; k < InFeatures; k++) d[k] = row[k] * (1 / f[i] - 1) - d[k];
            }
            _mergedDoraFactor.Remove(adapterName);
            Frozen.AddToWeight(delta, 1f);
        }
        else Frozen.AddToWeight(delta, -1f);
        _baseRowNormSq = null;
        _merged.Remove(adapterName);
    }

    public bool IsMerged(string adapterName) => _merged.Contains(adapterName);

    /// <summary>Adds adapter <paramref name="newName"/> combining the given ones (see PeftModel.Combine). Returns its rank.</summary>
    public int AddCombined(string newName, IReadOnlyList<string> names, IReadOnlyList<double> weights, string combination)
    {
        var parts = names.Select((n, i) => (ad: _adapters.GetValueOrDefault(n), w: weights[i])).Where(p => p.ad != null).ToList();
        int inF = InFeatures, outF = OutFeatures;
        int rank = combination == "cat" ? parts.Sum(p => p.ad!.Rank) : parts[0].ad!.Rank;
        var combined = new LoraAdapter(Name, inF, outF, rank, rank, false, parts[0].ad!.DropoutP, false);
        var A = combined.A.Value.Floats;
        var B = combined.B.Value.Floats;
        A.Clear(); B.Clear();
        int offset = 0;
        foreach (var (ad, w) in parts)
        {
            var a = ad!.A.Value.Floats;
            var b = ad.B.Value.Floats;
            int r = ad.Rank;
            if (combination == "linear")
            {
                float sa = (float)(Math.Sqrt(w) * ad.Scaling), sb = (float)Math.Sqrt(w);
                for (int i = 0; i < a.Length; i++) A[i] += sa * a[i];
                for (int i = 0; i < b.Length; i++) B[i] += sb * b[i];
            }
            else
            {
                a.CopyTo(A.Slice(offset * inF, r * inF));
                float sb = (float)(w * ad.Scaling);
                for (int o = 0; o < outF; o++)
                    for (int j = 0; j < r; j++) B[o * rank + offset + j] = sb * b[o * r + j];
            }
            offset += r;
        }
        Add(newName, combined);
        return rank;
    }
}
