using PeftSharp.Cli.Comparison;
using static PeftSharp.Tests.Comparison.ComparisonFixtures;

namespace PeftSharp.Tests.Comparison;

public class SeedClaimsTests
{
    static ClaimCheck Claim(IReadOnlyList<MethodResult> results, string titleStart) =>
        SeedClaims.Evaluate(results).Single(c => c.Title.StartsWith(titleStart));

    static ClaimPart Part(ClaimCheck c, string name) => c.Parts.Single(p => p.Name == name);

    /// <summary>A result as if averaged over three seeds, with the given spreads.</summary>
    static MethodResult Seeded(MethodResult r, double evalLossSd, double tokensSd, double exactMatchSd = 0, double rssSd = 0) => r with
    {
        Seeds = [42, 43, 44],
        Spread = new MethodSpread { EvalLoss = evalLossSd, TokensPerSecond = tokensSd, ExactMatch = exactMatchSd, PeakRssMib = rssSd },
    };

    [Fact]
    public void Memory_claim_judges_peak_memory_and_base_weights_separately()
    {
        var results = new[] { Result("full", 2, 400, 900), Result("lora", 2, 300, 1000), Result("qlora", 2, 200, 700) };
        var c = Claim(results, "QLoRA memory");
        Assert.Equal(ClaimVerdict.Agrees, c.Verdict);
        Assert.Equal(SeedClaims.Seed002, c.Source);
        Assert.Equal("“Head-to-head comparison: QLoRA vs Standard LoRA”", c.Source.Citation);
        Assert.Contains("75%", c.Quote);
        Assert.Contains("QLoRA 50.0 %, LoRA 25.0 %", c.Ours);        // 1 − 200/400, 1 − 300/400
        Assert.Contains("-33.3 % peak RSS", c.Ours);                 // 200/300 − 1
        Assert.Contains("-85.0 % frozen-weight bytes", c.Ours);      // 600 000 / 4 000 000 − 1
        Assert.Equal(ClaimVerdict.Agrees, Part(c, "base weights").Verdict);   // 0.15 ≤ 12/48
        // QLoRA's peak above LoRA's while its base weights are 6.7× smaller: one part each way.
        var worse = Claim([Result("lora", 2, 300, 1000), Result("qlora", 2, 310, 700)], "QLoRA memory");
        Assert.Equal(ClaimVerdict.Disagrees, Part(worse, "peak memory").Verdict);
        Assert.Equal(ClaimVerdict.PartlyAgrees, worse.Verdict);
        // 1 MiB apart: within the assumed 1 % per run.
        var close = Claim([Result("lora", 2, 300, 1000), Result("qlora", 2, 299, 700)], "QLoRA memory");
        Assert.Equal(ClaimVerdict.Inconclusive, Part(close, "peak memory").Verdict);
    }

    [Fact]
    public void Speed_claim_agrees_only_inside_the_seed_range_and_not_within_noise()
    {
        MethodResult[] With(double qloraTps) => [Seeded(Result("lora", 2, 300, 1000), 0.01, 10), Seeded(Result("qlora", 2, 200, qloraTps), 0.01, 10)];
        Assert.Equal(ClaimVerdict.Agrees, Claim(With(700), "LoRA speed").Verdict);          // +42.9 %
        Assert.Contains("+42.9 %", Claim(With(700), "LoRA speed").Ours);
        Assert.Equal(ClaimVerdict.PartlyAgrees, Claim(With(800), "LoRA speed").Verdict);    // +25 %
        Assert.Equal(ClaimVerdict.PartlyAgrees, Claim(With(400), "LoRA speed").Verdict);    // +150 %
        Assert.Equal(ClaimVerdict.Disagrees, Claim(With(1300), "LoRA speed").Verdict);      // QLoRA faster, beyond the noise
        Assert.Equal(ClaimVerdict.Inconclusive, Claim(With(1010), "LoRA speed").Verdict);   // within the 2 × 10 tokens/s spread
        // One seed each: the assumed 30 % throughput noise per run (a shared machine) swallows even +42.9 %.
        var single = Claim([Result("lora", 2, 300, 1000), Result("qlora", 2, 200, 700)], "LoRA speed");
        Assert.Equal(ClaimVerdict.Inconclusive, single.Verdict);
        Assert.Contains("assumed one-seed noise", single.Ours);
    }

    [Fact]
    public void Quality_claim_needs_both_loss_and_exact_match_within_tolerance()
    {
        MethodResult[] Pair(double qloraLoss, double qloraEm) =>
            [Seeded(Result("lora", 2.00, 300, 1000, 0.50), 0.01, 10), Seeded(Result("qlora", qloraLoss, 200, 700, qloraEm), 0.01, 10)];
        Assert.Equal(ClaimVerdict.Agrees, Claim(Pair(2.05, 0.45), "Comparable").Verdict);        // 2.5 % + 1 % noise ≤ 5 %; 5 points ≤ 10
        Assert.Equal(ClaimVerdict.Disagrees, Claim(Pair(2.50, 0.10), "Comparable").Verdict);
        var lossOnly = Claim(Pair(2.02, 0.20), "Comparable");
        Assert.Equal(ClaimVerdict.PartlyAgrees, lossOnly.Verdict);
        Assert.Equal(ClaimVerdict.Disagrees, Part(lossOnly, "exact match").Verdict);
        var straddles = Claim(Pair(2.09, 0.45), "Comparable");
        Assert.Equal(ClaimVerdict.Inconclusive, Part(straddles, "eval loss").Verdict);   // 4.5 % ± 1 % straddles 5 %
        Assert.Equal(ClaimVerdict.PartlyAgrees, straddles.Verdict);                     // the exact-match part still agrees
    }

    [Fact]
    public void Dora_verdict_judges_quality_and_overhead()
    {
        MethodResult[] Pair(double doraLoss, double doraTps, double doraEm) =>
            [Seeded(Result("lora", 2.00, 300, 1000, 0.50), 0.01, 10), Seeded(Result("dora", doraLoss, 300, doraTps, doraEm), 0.01, 10)];
        // Lower loss, higher exact match, +5 % time per token: every part agrees.
        var good = Claim(Pair(1.80, 950, 0.60), "DoRA");
        Assert.Equal(["eval loss", "exact match", "overhead"], good.Parts.Select(p => p.Name));
        Assert.Equal(ClaimVerdict.Agrees, good.Verdict);
        Assert.Equal(SeedClaims.Seed004, good.Source);
        Assert.DoesNotContain(".txt", good.Source.Citation);
        // Better quality but +100 % time per token: the overhead part disagrees, so the claim only partly holds.
        var slow = Claim(Pair(1.80, 500, 0.60), "DoRA");
        Assert.Equal(ClaimVerdict.Disagrees, Part(slow, "overhead").Verdict);
        Assert.Contains("+100.0 % time per token", slow.Ours);
        Assert.Equal(ClaimVerdict.PartlyAgrees, slow.Verdict);
        // Worse on everything: disagrees.
        Assert.Equal(ClaimVerdict.Disagrees, Claim(Pair(2.20, 500, 0.40), "DoRA").Verdict);
        // One seed each: a 0.08 % loss difference, equal exact match and equal speed are all within the assumed noise.
        var tie = Claim([Result("lora", 3.1056, 300, 1000, 0.469), Result("dora", 3.1030, 300, 1000, 0.469)], "DoRA");
        Assert.Equal(ClaimVerdict.Inconclusive, Part(tie, "eval loss").Verdict);
        Assert.Equal(ClaimVerdict.Inconclusive, Part(tie, "exact match").Verdict);
        Assert.Equal(ClaimVerdict.Inconclusive, Part(tie, "overhead").Verdict);
        Assert.Equal(ClaimVerdict.Inconclusive, tie.Verdict);
        Assert.Contains("assumed one-seed noise", tie.Ours);
    }

    [Fact]
    public void With_several_seeds_a_difference_counts_only_beyond_the_measured_spread()
    {
        // DoRA's loss is 0.05 lower. Spreads of 0.01 each: decided; spreads of 0.03 each (sum 0.06): not.
        MethodResult[] With(double sd) => [Seeded(Result("lora", 2.00, 300, 1000), sd, 10), Seeded(Result("dora", 1.95, 300, 950), sd, 10)];
        var narrow = Claim(With(0.01), "DoRA");
        Assert.Equal(ClaimVerdict.Agrees, Part(narrow, "eval loss").Verdict);
        Assert.Contains("spread over the seeds", Part(narrow, "eval loss").Finding);
        Assert.Equal(ClaimVerdict.Inconclusive, Part(Claim(With(0.03), "DoRA"), "eval loss").Verdict);
        // The same 5 % throughput gap: inside a 40 tokens/s spread per method, outside a 10 tokens/s one.
        MethodResult[] Speed(double sd) => [Seeded(Result("lora", 2, 300, 1000), 0.01, sd), Seeded(Result("qlora", 2, 200, 950), 0.01, sd)];
        Assert.Equal(ClaimVerdict.PartlyAgrees, Claim(Speed(10), "LoRA speed").Verdict);
        Assert.Equal(ClaimVerdict.Inconclusive, Claim(Speed(40), "LoRA speed").Verdict);
    }

    [Fact]
    public void Parts_combine_into_one_verdict()
    {
        ClaimPart P(ClaimVerdict v) => new("x", v, "");
        Assert.Equal(ClaimVerdict.Agrees, ClaimCheck.Combine([P(ClaimVerdict.Agrees), P(ClaimVerdict.Agrees)]));
        Assert.Equal(ClaimVerdict.PartlyAgrees, ClaimCheck.Combine([P(ClaimVerdict.Agrees), P(ClaimVerdict.Disagrees)]));
        Assert.Equal(ClaimVerdict.PartlyAgrees, ClaimCheck.Combine([P(ClaimVerdict.Agrees), P(ClaimVerdict.Inconclusive)]));
        Assert.Equal(ClaimVerdict.Disagrees, ClaimCheck.Combine([P(ClaimVerdict.Disagrees), P(ClaimVerdict.Inconclusive)]));
        Assert.Equal(ClaimVerdict.Inconclusive, ClaimCheck.Combine([P(ClaimVerdict.Inconclusive), P(ClaimVerdict.NotMeasured)]));
        Assert.Equal(ClaimVerdict.NotMeasured, ClaimCheck.Combine([P(ClaimVerdict.NotMeasured)]));
    }

    [Fact]
    public void Claims_whose_methods_failed_are_not_measured_and_say_which_method_is_missing()
    {
        var results = new[] { Result("lora", 2, 300, 1000), Failed("qlora", "error: nope"), Result("dora", 1.7, 300, 950) };
        foreach (var title in new[] { "QLoRA memory", "LoRA speed", "Comparable" })
        {
            var c = Claim(results, title);
            Assert.Equal(ClaimVerdict.NotMeasured, c.Verdict);
            Assert.Contains("qlora did not run or failed", c.Ours);
        }
        Assert.Equal(ClaimVerdict.Agrees, Part(Claim(results, "DoRA"), "eval loss").Verdict);   // 15 % lower: beyond the assumed noise
        Assert.Equal(ClaimVerdict.NotMeasured, Claim([Result("lora", 2, 300, 1000)], "DoRA").Verdict);
    }
}
