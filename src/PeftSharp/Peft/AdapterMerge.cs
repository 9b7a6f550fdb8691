using PeftSharp.Inference;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Peft;

/// <summary>What merging an adapter changed: the largest relative logit difference between the merged model and the
/// unmerged one (adapter active) on a probe sequence, and for a 4-bit base the largest weight rounding error that
/// re-quantization added.</summary>
internal sealed record MergeResult(double MaxRelativeLogitDifference, bool IntoQuantizedBase, double MaxRequantizationError)
{
    /// <summary>bitsandbytes' warning when merging into a 4-bit linear (peft tuners/lora/bnb.py).</summary>
    public const string QuantizedWarning = "Merge lora module to 4-bit linear may get different generations due to rounding errors.";
}

internal static class AdapterMerge
{
    /// <summary>A short deterministic probe sequence for measuring the merged error.</summary>
    public static int[] ProbeIds(int vocab, int length = 16)
    {
        var ids = new int[length];
        for (int i = 0; i < length; i++) ids[i] = (int)((1 + 7919L * i) % vocab);
        return ids;
    }

    /// <summary>
    /// Merges the active adapter into the base weights (dense: W ← W + ΔW; 4-bit: dequantize, add, re-quantize with the
    /// same settings; modules_to_save replace the embedding and LM head) and measures the merged error on
    /// <paramref name="probe"/>: max |merged − unmerged| / max |unmerged| over all logits, the merged model run with no
    /// adapter. With <paramref name="mergeDtype"/> the dense weights the adapter touches are first stored in that dtype
    /// (exactly, as PEFT merges into a model loaded in it), so an F32 merge of a BF16 base keeps float32 precision.
    /// </summary>
    public static MergeResult MergeActive(PeftModel pm, int[]? probe = null, DType? mergeDtype = null)
    {
        probe ??= ProbeIds(pm.Model.Config.VocabSize);
        if (mergeDtype is { } dtype)
            foreach (var m in pm.LoraModules)
                if (CausalLM.BaseProjection(m) is Linear lin) lin.ConvertStorage(dtype);
        var before = Logits(pm.Model, pm.Compute, pm.Route(pm.Active), probe);
        pm.Merge();
        var after = Logits(pm.Model, pm.Compute, AdapterRouting.None, probe);
        int bad = Array.FindIndex(after, x => !float.IsFinite(x));
        if (bad >= 0)
            throw new PeftException($"the merged model gives a non-finite logit ({after[bad]} at probe position {bad / pm.Model.Config.VocabSize}): " +
                                    "the adapter (or the base) holds NaN or infinite values; nothing was written");
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < before.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs((double)after[i] - before[i]));
            maxRef = Math.Max(maxRef, Math.Abs((double)before[i]));
        }
        var quantized = pm.Model.QuantizedProjections().ToList();
        double rounding = quantized.Count == 0 ? 0 : quantized.Max(q => (double)q.MergeRoundingError);
        return new MergeResult(maxRef > 0 ? maxDiff / maxRef : maxDiff, quantized.Count > 0, rounding);
    }

    /// <summary>Logits (n·V) of the model for one sequence.</summary>
    public static float[] Logits(CausalLM m, Compute.ComputeContext compute, AdapterRouting routing, int[] ids)
    {
        var all = new float[ids.Length * m.Config.VocabSize];
        using var s = new InferenceSession(m, compute, ids.Length, routing);
        s.Feed(ids, Span<float>.Empty, all);
        return all;
    }
}
