using PeftSharp.Compute;
using PeftSharp.Inference;
using PeftSharp.Models;
using PeftSharp.Peft;

namespace PeftSharp.Export;

/// <summary>How well a rank-R LoRA approximates a DoRA adapter: ‖ΔW − ΔW_R‖_F / ‖ΔW‖_F over all adapted weights, and
/// the mean KL(DoRA ‖ approximation) of the next-token distributions on a probe sequence.</summary>
internal sealed record DoraApproximation(IReadOnlyList<LoraFactors> Factors, int Rank, double RelativeFrobeniusError, double MeanKl, int KlPositions);

/// <summary>
/// Turns a DoRA (or QDoRA) adapter into a plain LoRA for runtimes without DoRA (llama.cpp, vLLM): the full update
/// ΔW = m/‖W + s·B·A‖_row ⊙ (W + s·B·A) − W is formed in float64 per module and truncated to its top R singular
/// triplets, B = U·√S, A = √S·Vᵀ (scale 1). The error report lets the user choose R.
/// </summary>
internal static class DoraAsLora
{
    public static DoraApproximation Approximate(PeftModel pm, string adapter, int rank, int[]? probe = null)
    {
        if (rank <= 0) throw new PeftException($"--as-lora: the rank must be positive, got {rank}");
        var factors = new List<LoraFactors>();
        double errSq = 0, normSq = 0;
        foreach (var m in pm.LoraModules)
        {
            if (!m.Adapters.ContainsKey(adapter)) continue;
            int outF = m.OutFeatures, inF = m.InFeatures;
            int k = Math.Min(rank, Math.Min(outF, inF));
            var delta = FullDelta(pm.Compute, m, adapter);
            var svd = TruncatedSvd.Exact(pm.Compute, delta, outF, inF, k);
            var a = new float[k * inF];
            var b = new float[outF * k];
            for (int j = 0; j < k; j++)
            {
                double r = Math.Sqrt(svd.S[j]);
                for (int i = 0; i < inF; i++) a[j * inF + i] = (float)(r * svd.Vt[j * inF + i]);
                for (int o = 0; o < outF; o++) b[o * k + j] = (float)(r * svd.U[o * k + j]);
            }
            for (int o = 0; o < outF; o++)
                for (int i = 0; i < inF; i++)
                {
                    double approx = 0;
                    for (int j = 0; j < k; j++) approx += (double)b[o * k + j] * a[j * inF + i];
                    double d = delta[o * inF + i];
                    errSq += (d - approx) * (d - approx);
                    normSq += d * d;
                }
            factors.Add(new LoraFactors(m.Name, k, inF, outF, a, b, 1.0));
        }
        if (factors.Count == 0) throw new PeftException($"adapter '{adapter}' adapts no module");
        var (kl, n) = MeanKl(pm, adapter, factors, probe ?? AdapterMerge.ProbeIds(pm.Model.Config.VocabSize, 32));
        return new DoraApproximation(factors, rank, normSq > 0 ? Math.Sqrt(errSq / normSq) : 0, kl, n);
    }

    /// <summary>The merged weight minus the base, float64 (out, in), as PEFT's DoRA merge forms it.</summary>
    internal static double[] FullDelta(ComputeContext ctx, LoraLinear m, string adapter)
    {
        var ad = m.Adapters[adapter];
        var frozen = CausalLM.BaseProjection(m);
        int outF = m.OutFeatures, inF = m.InFeatures, r = ad.Rank;
        var w = new float[(long)outF * inF];
        frozen.ReadRows(ctx, 0, outF, w);
        var a = ad.A.Value.Floats; var b = ad.B.Value.Floats;
        var mag = ad.Magnitude != null ? ad.Magnitude.Value.Floats.ToArray() : null;
        var delta = new double[(long)outF * inF];
        var row = new double[inF];
        for (int o = 0; o < outF; o++)
        {
            double ss = 0;
            for (int i = 0; i < inF; i++)
            {
                double s = 0;
                for (int j = 0; j < r; j++) s += (double)b[o * r + j] * a[j * inF + i];
                row[i] = w[(long)o * inF + i] + ad.Scaling * s;
                ss += row[i] * row[i];
            }
            double f = mag != null ? mag[o] / Math.Sqrt(ss) : 1;
            for (int i = 0; i < inF; i++) delta[(long)o * inF + i] = f * row[i] - w[(long)o * inF + i];
        }
        return delta;
    }

    /// <summary>Mean over positions of KL(p_DoRA ‖ p_LoRA-R), the approximation loaded as a temporary adapter.</summary>
    static (double Kl, int Positions) MeanKl(PeftModel pm, string adapter, List<LoraFactors> factors, int[] probe)
    {
        string? wasActive = pm.Active;
        var reference = AdapterMerge.Logits(pm.Model, pm.Compute, pm.Route(adapter), probe);
        const string temp = "__dora_as_lora";
        pm.AddAdapter(temp, new LoraConfig
        {
            R = factors.Max(f => f.Rank), LoraAlpha = 1, TargetModules = factors.Select(f => f.Module).ToList(),
            RankPattern = factors.Select(f => new KeyValuePair<string, int>(f.Module, f.Rank)).ToList(),
            AlphaPattern = factors.Select(f => new KeyValuePair<string, double>(f.Module, f.Rank)).ToList(),
            InitLoraWeights = "false",
        });
        try
        {
            foreach (var m in pm.LoraModules)
            {
                var f = factors.FirstOrDefault(x => x.Module == m.Name);
                if (f == null) continue;
                var ad = m.Adapters[temp];
                f.A.CopyTo(ad.A.Value.Floats);
                f.B.CopyTo(ad.B.Value.Floats);
            }
            var approx = AdapterMerge.Logits(pm.Model, pm.Compute, pm.Route(temp), probe);
            int V = pm.Model.Config.VocabSize;
            double total = 0;
            for (int p = 0; p < probe.Length; p++)
                total += Kl(reference.AsSpan(p * V, V), approx.AsSpan(p * V, V));
            return (total / probe.Length, probe.Length);
        }
        finally
        {
            pm.Unload(temp);
            pm.SetActive(wasActive);
        }
    }

    static double Kl(ReadOnlySpan<float> p, ReadOnlySpan<float> q)
    {
        double mp = double.NegativeInfinity, mq = double.NegativeInfinity;
        foreach (var x in p) mp = Math.Max(mp, x);
        foreach (var x in q) mq = Math.Max(mq, x);
        double zp = 0, zq = 0;
        for (int i = 0; i < p.Length; i++) { zp += Math.Exp(p[i] - mp); zq += Math.Exp(q[i] - mq); }
        double lzp = mp + Math.Log(zp), lzq = mq + Math.Log(zq), kl = 0;
        for (int i = 0; i < p.Length; i++)
        {
            double lp = p[i] - lzp, lq = q[i] - lzq;
            kl += Math.Exp(lp) * (lp - lq);
        }
        return Math.Max(0, kl);
    }
}
