using PeftSharp.Cli.Comparison;
using static PeftSharp.Tests.Comparison.ComparisonFixtures;

namespace PeftSharp.Tests.Comparison;

public class SeedClaimsTests
{
    static ClaimCheck Claim(IReadOnlyList<MethodResult> results, string titleStart) =>
        SeedClaims.Evaluate(results).Single(c => c.Title.StartsWith(titleStart));

    [Fact]
    public void Memory_claim_uses_reduction_against_full_and_agrees_when_qlora_needs_less_than_lora()
    {
        var results = new[] { Result("full", 2, 400, 900), Result("lora", 2, 300, 1000), Result("qlora", 2, 200, 700) };
        var c = Claim(results, "QLoRA memory");
        Assert.Equal(ClaimVerdict.Agrees, c.Verdict);
        Assert.Equal(SeedClaims.Seed002, c.Source);
        Assert.Contains("75%", c.Quote);
        Assert.Contains("QLoRA 50.0 %, LoRA 25.0 %", c.Ours);        // 1 − 200/400, 1 − 300/400
        Assert.Contains("-33.3 % peak RSS", c.Ours);                 // 200/300 − 1
        Assert.Contains("-85.0 % frozen-weight bytes", c.Ours);      // 600 000 / 4 000 000 − 1
        var worse = new[] { Result("lora", 2, 300, 1000), Result("qlora", 2, 310, 700) };
        Assert.Equal(ClaimVerdict.Disagrees, Claim(worse, "QLoRA memory").Verdict);
    }

    [Fact]
    public void Speed_claim_agrees_only_inside_the_seed_range()
    {
        MethodResult[] With(double qloraTps) => [Result("lora", 2, 300, 1000), Result("qlora", 2, 200, qloraTps)];
        Assert.Equal(ClaimVerdict.Agrees, Claim(With(700), "LoRA speed").Verdict);          // +42.9 %
        Assert.Contains("+42.9 %", Claim(With(700), "LoRA speed").Ours);
        Assert.Equal(ClaimVerdict.PartlyAgrees, Claim(With(900), "LoRA speed").Verdict);    // +11.1 %
        Assert.Equal(ClaimVerdict.PartlyAgrees, Claim(With(400), "LoRA speed").Verdict);    // +150 %
        Assert.Equal(ClaimVerdict.Disagrees, Claim(With(1100), "LoRA speed").Verdict);      // QLoRA faster
    }

    [Fact]
    public void Quality_and_dora_claims_use_eval_loss_and_exact_match()
    {
        var close = new[] { Result("lora", 2.00, 300, 1000, 0.50), Result("qlora", 2.05, 200, 700, 0.45), Result("dora", 1.90, 300, 800, 0.55) };
        Assert.Equal(ClaimVerdict.Agrees, Claim(close, "Comparable").Verdict);
        Assert.Equal(ClaimVerdict.Agrees, Claim(close, "DoRA").Verdict);
        Assert.Equal(SeedClaims.Seed004, Claim(close, "DoRA").Source);
        var far = new[] { Result("lora", 2.00, 300, 1000, 0.50), Result("qlora", 2.50, 200, 700, 0.10), Result("dora", 2.10, 300, 800, 0.40) };
        Assert.Equal(ClaimVerdict.Disagrees, Claim(far, "Comparable").Verdict);
        Assert.Equal(ClaimVerdict.Disagrees, Claim(far, "DoRA").Verdict);
        var mixed = new[] { Result("lora", 2.00, 300, 1000, 0.50), Result("dora", 1.90, 300, 800, 0.40) };
        Assert.Equal(ClaimVerdict.PartlyAgrees, Claim(mixed, "DoRA").Verdict);
        var tie = new[] { Result("lora", 3.1056, 300, 1000, 0.469), Result("dora", 3.1030, 300, 800, 0.469) };   // −0.08 %, same exact match
        Assert.Equal(ClaimVerdict.Inconclusive, Claim(tie, "DoRA").Verdict);
        Assert.Contains("within run-to-run noise", Claim(tie, "DoRA").Ours);
        var tieLossBetterTask = new[] { Result("lora", 3.1056, 300, 1000, 0.40), Result("dora", 3.1030, 300, 800, 0.50) };
        Assert.Equal(ClaimVerdict.Agrees, Claim(tieLossBetterTask, "DoRA").Verdict);
    }

    [Fact]
    public void Claims_whose_methods_failed_are_not_measured_and_say_which_method_is_missing()
    {
        var results = new[] { Result("lora", 2, 300, 1000), Failed("qlora", "error: nope"), Result("dora", 1.9, 300, 800) };
        foreach (var title in new[] { "QLoRA memory", "LoRA speed", "Comparable" })
        {
            var c = Claim(results, title);
            Assert.Equal(ClaimVerdict.NotMeasured, c.Verdict);
            Assert.Contains("qlora did not run or failed", c.Ours);
        }
        Assert.Equal(ClaimVerdict.Agrees, Claim(results, "DoRA").Verdict);
    }
}
