namespace PeftSharp.Cli.Comparison;

/// <summary>
/// The seed documents' quantitative claims about the methods, checked against our measurements.
/// Sources: 002_8f6ad8640bcd2b29.txt ("Head-to-head comparison: QLoRA vs Standard LoRA", GPU study on 7B–65B models)
/// and 004_056ac6d9ee0dd6ea.txt (LoRA/QLoRA/DoRA/QDoRA overview). Our setting is a tiny model on CPU, so agreement in
/// direction is the meaningful part; magnitudes on a GPU with billions of parameters are a different regime.
/// </summary>
internal static class SeedClaims
{
    public const string Seed002 = "002_8f6ad8640bcd2b29.txt";
    public const string Seed004 = "004_056ac6d9ee0dd6ea.txt";

    /// <summary>Relative eval-loss difference below which two methods count as "comparable".</summary>
    public const double ComparableLossTolerance = 0.05;
    /// <summary>Relative eval-loss difference below which "one method is better" cannot be told from run-to-run noise.</summary>
    public const double NoiseLossDifference = 0.005;
    /// <summary>Exact-match difference (absolute, 0..1) below which two methods count as "comparable".</summary>
    public const double ComparableExactMatchTolerance = 0.10;

    public static IReadOnlyList<ClaimCheck> Evaluate(IReadOnlyList<MethodResult> results)
    {
        MethodResult? Get(string m) => results.FirstOrDefault(r => r.Method == m && r.Succeeded);
        var full = Get("full");
        var lora = Get("lora");
        var qlora = Get("qlora");
        var dora = Get("dora");
        return [Memory(full, lora, qlora), Speed(lora, qlora), Quality(lora, qlora), DoraOverLora(lora, dora)];
    }

    static ClaimCheck Memory(MethodResult? full, MethodResult? lora, MethodResult? qlora)
    {
        const string title = "QLoRA memory reduction vs LoRA";
        const string quote = "\"QLoRA achieves 75% memory reduction vs LoRA's 70%\"; for LLaMA 65B \"QLoRA uses just 12GB compared to LoRA's 48GB\"";
        const string def = "reduction(m) = 1 − peakRSS(m) / peakRSS(full), the training process's own peak resident set; " +
                           "also 1 − peakRSS(qlora) / peakRSS(lora) and the same ratios of frozen-weight bytes. " +
                           "Agrees when QLoRA's reduction exceeds LoRA's (QLoRA needs less memory than LoRA).";
        if (lora?.PeakRssMb is not double pl || qlora?.PeakRssMb is not double pq)
            return new(title, Seed002, quote, def, Missing(("lora", lora), ("qlora", qlora)), ClaimVerdict.NotMeasured);
        string ours = "";
        if (full?.PeakRssMb is double pf && pf > 0)
            ours = $"reduction vs full: QLoRA {Fmt.Pct(1 - pq / pf)}, LoRA {Fmt.Pct(1 - pl / pf)} (peak RSS full {Fmt.Mb(pf)}, LoRA {Fmt.Mb(pl)}, QLoRA {Fmt.Mb(pq)}); ";
        else
            ours = $"full fine-tuning not measured; peak RSS LoRA {Fmt.Mb(pl)}, QLoRA {Fmt.Mb(pq)}; ";
        ours += $"QLoRA vs LoRA: {Fmt.SignedPct(pq / pl - 1)} peak RSS";
        if (lora.FrozenWeightBytes is long fl && qlora.FrozenWeightBytes is long fq && fl > 0)
            ours += $", {Fmt.SignedPct((double)fq / fl - 1)} frozen-weight bytes ({Fmt.Bytes(fl)} → {Fmt.Bytes(fq)})";
        ours += ". On a tiny model the runtime's fixed footprint dominates the resident set, which shrinks every relative saving.";
        var verdict = pq < pl ? ClaimVerdict.Agrees : ClaimVerdict.Disagrees;
        return new(title, Seed002, quote, def, ours, verdict);
    }

    static ClaimCheck Speed(MethodResult? lora, MethodResult? qlora)
    {
        const string title = "LoRA speed over QLoRA";
        const string quote = "\"LoRA trains 66% faster than QLoRA\"; steps/s table: +33% (7B), +45% (13B), +60% (30B) for LoRA";
        const string def = "speedup = tokens/s(lora) / tokens/s(qlora) − 1 (mean over the training steps). " +
                           "Agrees when within +33…+66 %, partly agrees when LoRA is faster by another margin.";
        if (lora?.TokensPerSecond is not double tl || qlora?.TokensPerSecond is not double tq || tq <= 0)
            return new(title, Seed002, quote, def, Missing(("lora", lora), ("qlora", qlora)), ClaimVerdict.NotMeasured);
        double speedup = tl / tq - 1;
        var verdict = speedup is >= 0.33 and <= 0.66 ? ClaimVerdict.Agrees : speedup > 0 ? ClaimVerdict.PartlyAgrees : ClaimVerdict.Disagrees;
        return new(title, Seed002, quote, def,
            $"LoRA {Fmt.Num(tl, 0)} tokens/s, QLoRA {Fmt.Num(tq, 0)} tokens/s: LoRA {Fmt.SignedPct(speedup)} (CPU kernels, not the seed's GPU).", verdict);
    }

    static ClaimCheck Quality(MethodResult? lora, MethodResult? qlora)
    {
        const string title = "Comparable final quality (QLoRA vs LoRA)";
        const string quote = "\"Both methods achieve comparable final performance\"";
        string def = $"comparable when the final eval losses differ by at most {Fmt.Pct(ComparableLossTolerance)} (relative) and, where the data set " +
                     $"defines a task, exact match differs by at most {ComparableExactMatchTolerance * 100:0} points.";
        if (lora?.EvalLoss is not double ll || qlora?.EvalLoss is not double lq)
            return new(title, Seed002, quote, def, Missing(("lora", lora), ("qlora", qlora), noEval: true), ClaimVerdict.NotMeasured);
        double rel = (lq - ll) / ll;
        bool lossOk = Math.Abs(rel) <= ComparableLossTolerance;
        string ours = $"eval loss LoRA {Fmt.Num(ll, 4)}, QLoRA {Fmt.Num(lq, 4)} ({Fmt.SignedPct(rel)})";
        bool emOk = true;
        if (lora.ExactMatch is double el && qlora.ExactMatch is double eq)
        {
            emOk = Math.Abs(eq - el) <= ComparableExactMatchTolerance;
            ours += $"; exact match LoRA {Fmt.Pct(el)}, QLoRA {Fmt.Pct(eq)}";
        }
        var verdict = lossOk && emOk ? ClaimVerdict.Agrees : lossOk || emOk ? ClaimVerdict.PartlyAgrees : ClaimVerdict.Disagrees;
        return new(title, Seed002, quote, def, ours + ".", verdict);
    }

    static ClaimCheck DoraOverLora(MethodResult? lora, MethodResult? dora)
    {
        const string title = "DoRA above LoRA";
        const string quote = "\"DoRA consistently outperforms LoRA across various tasks and model sizes, and it requires minimal additional computational overhead\"";
        string def = "DoRA above LoRA when its final eval loss is lower (and, where the task metric exists, its exact match is not lower); " +
                     $"partly when only one of the two holds; inconclusive when the losses differ by less than {Fmt.Pct(NoiseLossDifference)} " +
                     "and exact match is equal. Overhead = tokens/s(lora) / tokens/s(dora) − 1.";
        if (lora?.EvalLoss is not double ll || dora?.EvalLoss is not double ld)
            return new(title, Seed004, quote, def, Missing(("lora", lora), ("dora", dora), noEval: true), ClaimVerdict.NotMeasured);
        bool lossBetter = ld < ll;
        bool lossTie = Math.Abs(ld - ll) < NoiseLossDifference * ll;
        string ours = $"eval loss LoRA {Fmt.Num(ll, 4)}, DoRA {Fmt.Num(ld, 4)} ({Fmt.SignedPct((ld - ll) / ll)})";
        bool? emBetter = null;
        if (lora.ExactMatch is double el && dora.ExactMatch is double ed)
        {
            emBetter = ed >= el;
            ours += $"; exact match LoRA {Fmt.Pct(el)}, DoRA {Fmt.Pct(ed)}";
        }
        if (lora.TokensPerSecond is double tl && dora.TokensPerSecond is double td && td > 0)
            ours += $"; DoRA overhead {Fmt.SignedPct(tl / td - 1)} time per token";
        bool emTie = lora.ExactMatch == dora.ExactMatch;
        var verdict = lossTie && (emBetter == null || emTie) ? ClaimVerdict.Inconclusive
            : emBetter == null ? (lossBetter ? ClaimVerdict.Agrees : ClaimVerdict.Disagrees)
            : lossBetter && emBetter.Value ? ClaimVerdict.Agrees : lossBetter || emBetter.Value ? ClaimVerdict.PartlyAgrees : ClaimVerdict.Disagrees;
        return new(title, Seed004, quote, def, ours + (verdict == ClaimVerdict.Inconclusive
            ? ". The difference is within run-to-run noise at this scale." : "."), verdict);
    }

    static string Missing((string Name, MethodResult? Result) a, (string Name, MethodResult? Result) b, bool noEval = false)
    {
        var missing = new[] { a, b }.Where(n => n.Result == null).Select(n => n.Name).ToList();
        return missing.Count > 0 ? $"{string.Join(" and ", missing)} did not run or failed"
            : noEval ? "no eval loss: the run had no eval set" : "a needed figure is missing from summary.json";
    }
}
