using PeftSharp.Compute;

namespace PeftSharp.Peft;

// Merge, unmerge, variant init and adapter combination: the operations that change weights (not for use while
// passes run on this module).
internal sealed unsafe partial class LoraLinear
{
    AdapterOp Op(ComputeContext ctx, string adapterName) =>
        new(this, _adapters.TryGetValue(adapterName, out var a) ? a : throw new PeftException($"{Name}: no adapter named '{adapterName}'"), null, null, ctx);

    /// <summary>The variant's initialization after A and B (DoRA: the magnitude from the row norms).</summary>
    public void InitializeVariant(ComputeContext ctx, string adapterName)
    {
        var op = Op(ctx, adapterName);
        op.Adapter.Variant.Initialize(op);
    }

    public void Merge(ComputeContext ctx, string adapterName)
    {
        var op = Op(ctx, adapterName);
        lock (_lock)
        {
            op.Adapter.Variant.Merge(op);
            BaseChanged();
            _merged.Add(adapterName);
        }
    }

    public void Unmerge(ComputeContext ctx, string adapterName)
    {
        var op = Op(ctx, adapterName);
        lock (_lock)
        {
            op.Adapter.Variant.Unmerge(op);
            BaseChanged();
            _merged.Remove(adapterName);
        }
    }

    public bool IsMerged(string adapterName) => _merged.Contains(adapterName);

    /// <summary>A variant's record of a merge, needed to undo it exactly (DoRA's factor f).</summary>
    internal void RememberMergeFactor(LoraAdapter ad, float[] f) => _mergeFactors[ad] = f;

    internal float[] TakeMergeFactor(LoraAdapter ad) =>
        _mergeFactors.Remove(ad, out var f) ? f : throw new PeftException($"{Name}: adapter is not merged");

    /// <summary>Adds adapter <paramref name="newName"/> combining the given ones (see PeftModel.Combine). Returns its rank.</summary>
    public int AddCombined(string newName, IReadOnlyList<string> names, IReadOnlyList<double> weights, string combination)
    {
        var parts = names.Select((n, i) => (ad: _adapters.GetValueOrDefault(n), w: weights[i])).Where(p => p.ad != null).ToList();
        int inF = InFeatures, outF = OutFeatures;
        int rank = combination == "cat" ? parts.Sum(p => p.ad!.Rank) : parts[0].ad!.Rank;
        var combined = new LoraAdapter(Name, inF, outF, rank, rank, false, parts[0].ad!.DropoutP, AdapterKind.Lora);
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
