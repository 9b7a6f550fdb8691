namespace PeftSharp.Cli.Comparison;

/// <summary>
/// The seed documents' quantitative claims about the methods, checked against our measurements, every part of each
/// claim on its own. A difference between two methods decides a part only when it exceeds the run-to-run noise
/// (<see cref="RunNoise"/>). Our setting is a tiny model on CPU, so agreement in direction is the meaningful part;
/// magnitudes on a GPU with billions of parameters are a different regime.
/// </summary>
internal static class SeedClaims
{
    public static readonly SeedDocument Seed002 = new("002_8f6ad8640bcd2b29.txt", "Head-to-head comparison: QLoRA vs Standard LoRA",
        "a GPU benchmarking study of LLaMA 7B–65B");
    /// <summary>Our copy of this article starts with its text, without a title line.</summary>
    public static readonly SeedDocument Seed004 = new("004_056ac6d9ee0dd6ea.txt", null,
        "an untitled article comparing LoRA, QLoRA, DoRA and QDoRA for fine-tuning small language models");

    /// <summary>Relative eval-loss difference up to which two methods count as "comparable".</summary>
    public const double ComparableLossTolerance = 0.05;
    /// <summary>Exact-match difference (absolute, 0..1) up to which two methods count as "comparable".</summary>
    public const double ComparableExactMatchTolerance = 0.10;
    /// <summary>Our reading of "minimal additional computational overhead": at most this much more time per token.</summary>
    public const double MinimalOverhead = 0.20;
    /// <summary>The seed's "12GB compared to LoRA's 48GB": QLoRA's base weights a quarter of LoRA's or less.</summary>
    public const double FrozenWeightRatio = 0.25;

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
        string def = "peak memory: reduction(m) = 1 − peakRSS(m) / peakRSS(full), the training process's own peak resident set; QLoRA's " +
                     "reduction exceeds LoRA's exactly when its peak RSS is lower, which must hold by more than the run-to-run noise. " +
                     $"Base weights: the seed's 12 GB against 48 GB; agrees when QLoRA's frozen base-weight bytes are at most {FrozenWeightRatio:0.##} of LoRA's.";
        if (lora?.PeakRssMib is not double pl || qlora?.PeakRssMib is not double pq)
            return NotMeasured(title, Seed002, quote, def, Missing(("lora", lora), ("qlora", qlora)));
        string peak = full?.PeakRssMib is double pf && pf > 0
            ? $"reduction vs full: QLoRA {Fmt.Pct(1 - pq / pf)}, LoRA {Fmt.Pct(1 - pl / pf)} (peak RSS full {Fmt.Mib(pf)}, LoRA {Fmt.Mib(pl)}, QLoRA {Fmt.Mib(pq)}); "
            : $"full fine-tuning not measured; peak RSS LoRA {Fmt.Mib(pl)}, QLoRA {Fmt.Mib(pq)}; ";
        double noise = RunNoise.OfDifference(lora, qlora, Figure.PeakRss);
        peak += $"QLoRA vs LoRA {Fmt.SignedPct(pq / pl - 1)} peak RSS (noise ±{Fmt.Mib(noise)}, {RunNoise.Kind(lora, qlora)})";
        var parts = new List<ClaimPart> { new("peak memory", Direction(RunNoise.Order(pl, pq, noise)), peak) };
        if (lora.FrozenWeightBytes is long fl && qlora.FrozenWeightBytes is long fq && fl > 0)
        {
            double ratio = (double)fq / fl;
            parts.Add(new("base weights", ratio <= FrozenWeightRatio ? ClaimVerdict.Agrees : ClaimVerdict.Disagrees,
                $"{Fmt.SignedPct(ratio - 1)} frozen-weight bytes ({Fmt.Bytes(fl)} → {Fmt.Bytes(fq)}, {1 / ratio:0.0}× smaller)"));
        }
        else parts.Add(new("base weights", ClaimVerdict.NotMeasured, "frozen-weight bytes missing from summary.json"));
        return new(title, Seed002, quote, def, parts,
            "On a tiny model the runtime's fixed footprint dominates the resident set, which shrinks every relative saving.");
    }

    static ClaimCheck Speed(MethodResult? lora, MethodResult? qlora)
    {
        const string title = "LoRA speed over QLoRA";
        const string quote = "\"LoRA trains 66% faster than QLoRA\"; steps/s table: +33% (7B), +45% (13B), +60% (30B) for LoRA";
        const string def = "speedup = tokens/s(lora) / tokens/s(qlora) − 1 (mean over the training steps). " +
                           "Agrees when within +33…+66 %, partly agrees when LoRA is faster by another margin; a difference within the " +
                           "run-to-run noise decides nothing.";
        if (lora?.TokensPerSecond is not double tl || qlora?.TokensPerSecond is not double tq || tq <= 0)
            return NotMeasured(title, Seed002, quote, def, Missing(("lora", lora), ("qlora", qlora)));
        double speedup = tl / tq - 1, noise = RunNoise.OfDifference(lora, qlora, Figure.TokensPerSecond);
        int order = RunNoise.Order(tl, tq, noise);
        var verdict = order == 0 ? ClaimVerdict.Inconclusive
            : speedup is >= 0.33 and <= 0.66 ? ClaimVerdict.Agrees : order > 0 ? ClaimVerdict.PartlyAgrees : ClaimVerdict.Disagrees;
        return new(title, Seed002, quote, def, [new("speed", verdict,
            $"LoRA {Fmt.Num(tl, 0)} tokens/s, QLoRA {Fmt.Num(tq, 0)} tokens/s: LoRA {Fmt.SignedPct(speedup)} " +
            $"(noise ±{Fmt.Num(noise, 0)} tokens/s, {RunNoise.Kind(lora, qlora)}; CPU kernels, not the seed's GPU)")]);
    }

    static ClaimCheck Quality(MethodResult? lora, MethodResult? qlora)
    {
        const string title = "Comparable final quality (QLoRA vs LoRA)";
        const string quote = "\"Both methods achieve comparable final performance\"";
        string def = $"eval loss: comparable when the final eval losses differ by at most {Fmt.Pct(ComparableLossTolerance)} (relative); " +
                     $"exact match, where the data set defines a task: by at most {ComparableExactMatchTolerance * 100:0} points. " +
                     "Agrees when the difference plus the run-to-run noise stays within the tolerance, disagrees when the difference " +
                     "minus the noise exceeds it, inconclusive between.";
        if (lora?.EvalLoss is not double ll || qlora?.EvalLoss is not double lq)
            return NotMeasured(title, Seed002, quote, def, Missing(("lora", lora), ("qlora", qlora), noEval: true));
        double rel = (lq - ll) / ll, relNoise = RunNoise.OfDifference(lora, qlora, Figure.EvalLoss) / ll;
        var parts = new List<ClaimPart>
        {
            new("eval loss", Within(Math.Abs(rel), relNoise, ComparableLossTolerance),
                $"LoRA {Fmt.Num(ll, 4)}, QLoRA {Fmt.Num(lq, 4)} ({Fmt.SignedPct(rel)}, noise ±{Fmt.Pct(relNoise)})"),
        };
        if (lora.ExactMatch is double el && qlora.ExactMatch is double eq)
        {
            double noise = RunNoise.OfDifference(lora, qlora, Figure.ExactMatch);
            parts.Add(new("exact match", Within(Math.Abs(eq - el), noise, ComparableExactMatchTolerance),
                $"LoRA {Fmt.Pct(el)}, QLoRA {Fmt.Pct(eq)} (noise ±{Fmt.Num(noise * 100, 1)} points)"));
        }
        return new(title, Seed002, quote, def, parts);
    }

    static ClaimCheck DoraOverLora(MethodResult? lora, MethodResult? dora)
    {
        const string title = "DoRA above LoRA";
        const string quote = "\"DoRA consistently outperforms LoRA across various tasks and model sizes, and it requires minimal additional computational overhead\"";
        string def = "Quality: DoRA's final eval loss lower than LoRA's and, where the task metric exists, its exact match higher, each by more " +
                     "than the run-to-run noise (within the noise the part is inconclusive). " +
                     $"Overhead = tokens/s(lora) / tokens/s(dora) − 1, the extra time per token; minimal when at most {Fmt.Pct(MinimalOverhead)} " +
                     "with the noise added, not minimal when above it with the noise taken off.";
        if (lora == null || dora == null)
            return NotMeasured(title, Seed004, quote, def, Missing(("lora", lora), ("dora", dora)));
        var parts = new List<ClaimPart>();
        if (lora.EvalLoss is double ll && dora.EvalLoss is double ld)
        {
            double noise = RunNoise.OfDifference(lora, dora, Figure.EvalLoss);
            parts.Add(new("eval loss", Direction(RunNoise.Order(ll, ld, noise)),
                $"LoRA {Fmt.Num(ll, 4)}, DoRA {Fmt.Num(ld, 4)} ({Fmt.SignedPct((ld - ll) / ll)}, noise ±{Fmt.Pct(noise / ll)}, {RunNoise.Kind(lora, dora)})"));
        }
        else parts.Add(new("eval loss", ClaimVerdict.NotMeasured, "no eval loss: the run had no eval set"));
        if (lora.ExactMatch is double el && dora.ExactMatch is double ed)
        {
            double noise = RunNoise.OfDifference(lora, dora, Figure.ExactMatch);
            parts.Add(new("exact match", Direction(RunNoise.Order(ed, el, noise)),
                $"LoRA {Fmt.Pct(el)}, DoRA {Fmt.Pct(ed)} (noise ±{Fmt.Num(noise * 100, 1)} points)"));
        }
        if (lora.TokensPerSecond is double tl && dora.TokensPerSecond is double td && td > 0)
        {
            double overhead = tl / td - 1;
            double relNoise = RunNoise.Of(lora, Figure.TokensPerSecond) / tl + RunNoise.Of(dora, Figure.TokensPerSecond) / td;
            parts.Add(new("overhead", Within(overhead, relNoise, MinimalOverhead),
                $"DoRA {Fmt.SignedPct(overhead)} time per token ({Fmt.Num(tl, 0)} against {Fmt.Num(td, 0)} tokens/s, noise ±{Fmt.Pct(relNoise)})"));
        }
        else parts.Add(new("overhead", ClaimVerdict.NotMeasured, "tokens/s missing from summary.json"));
        return new(title, Seed004, quote, def, parts);
    }

    /// <summary>A "better than" part: agrees when the claimed side leads beyond the noise, disagrees when it trails.</summary>
    static ClaimVerdict Direction(int order) => order > 0 ? ClaimVerdict.Agrees : order < 0 ? ClaimVerdict.Disagrees : ClaimVerdict.Inconclusive;

    /// <summary>An "at most <paramref name="tolerance"/>" part, decided only when the noise cannot move it across.</summary>
    static ClaimVerdict Within(double difference, double noise, double tolerance) =>
        difference + noise <= tolerance ? ClaimVerdict.Agrees : difference - noise > tolerance ? ClaimVerdict.Disagrees : ClaimVerdict.Inconclusive;

    static ClaimCheck NotMeasured(string title, SeedDocument source, string quote, string def, string why) =>
        new(title, source, quote, def, [new("all", ClaimVerdict.NotMeasured, why)]);

    static string Missing((string Name, MethodResult? Result) a, (string Name, MethodResult? Result) b, bool noEval = false)
    {
        var missing = new[] { a, b }.Where(n => n.Result == null).Select(n => n.Name).ToList();
        return missing.Count > 0 ? $"{string.Join(" and ", missing)} did not run or failed"
            : noEval ? "no eval loss: the run had no eval set" : "a needed figure is missing from summary.json";
    }
}
