using PeftSharp.Inference;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Inference;

public class SamplerTests
{
    static int ReferenceArgmax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    static double[] Softmax(float[] logits, double temperature)
    {
        double max = logits.Max();
        var p = logits.Select(l => Math.Exp((l - max) / temperature)).ToArray();
        double sum = p.Sum();
        return p.Select(x => x / sum).ToArray();
    }

    [Fact]
    public void Greedy_is_argmax_with_ties_to_the_lowest_id()
    {
        var rng = new Random(7);
        var sampler = new Sampler(SamplingOptions.Greedy);
        for (int trial = 0; trial < 50; trial++)
        {
            var logits = Numerics.RandomFloats(rng, 37, 5f);
            Assert.Equal(ReferenceArgmax(logits), sampler.Next(logits, []));
        }
        Assert.Equal(1, sampler.Next([0f, 3f, 3f, -1f], []));
    }

    [Fact]
    public void Top_k_1_and_tiny_top_p_are_greedy()
    {
        var rng = new Random(11);
        for (ulong seed = 0; seed < 5; seed++)
        {
            var topK = new Sampler(new SamplingOptions(Temperature: 1.5f, TopK: 1, Seed: seed));
            var topP = new Sampler(new SamplingOptions(Temperature: 1.5f, TopP: 1e-6f, Seed: seed));
            for (int trial = 0; trial < 20; trial++)
            {
                var logits = Numerics.RandomFloats(rng, 50, 3f);
                int expected = ReferenceArgmax(logits);
                Assert.Equal(expected, topK.Next(logits, []));
                Assert.Equal(expected, topP.Next(logits, []));
            }
        }
    }

    [Fact]
    public void Repetition_penalty_divides_positive_and_multiplies_negative_logits_once_per_token()
    {
        var greedy = new Sampler(new SamplingOptions(RepetitionPenalty: 1.5f));
        Assert.Equal(0, new Sampler(SamplingOptions.Greedy).Next([2.0f, 1.9f, -1f], [0]));
        Assert.Equal(1, greedy.Next([2.0f, 1.9f, -1f], [0]));       // 2 / 1.5 = 1.33 < 1.9
        Assert.Equal(1, greedy.Next([-1.0f, -1.2f], [0]));           // −1 · 1.5 = −1.5 < −1.2
        Assert.Equal(0, greedy.Next([2.0f, 1.0f], [0, 0, 0]));       // once: 1.33 > 1 (thrice would be 0.59)

        var probs = new double[3];
        new Sampler(new SamplingOptions(Temperature: 1, RepetitionPenalty: 2f)).Distribution([2f, 0f, -1f], [0, 2], probs);
        var expected = Softmax([1f, 0f, -2f], 1);
        Numerics.AssertClose(probs.Select(p => (float)p).ToArray(), expected, 1e-6, "penalized distribution");
    }

    [Fact]
    public void Same_seed_gives_the_same_sequence_and_another_seed_differs()
    {
        var rng = new Random(3);
        var rows = Enumerable.Range(0, 64).Select(_ => Numerics.RandomFloats(rng, 20, 2f)).ToArray();
        int[] Run(ulong seed)
        {
            var s = new Sampler(new SamplingOptions(Temperature: 1, TopK: 10, TopP: 0.95f, RepetitionPenalty: 1.1f, Seed: seed));
            var ids = new List<int>();
            foreach (var row in rows) ids.Add(s.Next(row, ids.ToArray()));
            return [.. ids];
        }
        Assert.Equal(Run(42), Run(42));
        Assert.NotEqual(Run(42), Run(43));
    }

    [Fact]
    public void Generator_matches_an_independent_xoshiro256starstar_splitmix64_implementation()
    {
        // Reference values from a Python implementation of the published algorithms (seeded via SplitMix64).
        var g0 = new Xoshiro256StarStar(0);
        Assert.Equal([0x99ec5f36cb75f2b4UL, 0xbf6e1f784956452aUL, 0x1a5f849d4933e6e0UL, 0x6aa594f1262d2d2cUL],
            [g0.NextUInt64(), g0.NextUInt64(), g0.NextUInt64(), g0.NextUInt64()]);
        var g42 = new Xoshiro256StarStar(42);
        Assert.Equal([0x15780b2e0c2ec716UL, 0x6104d9866d113a7eUL], [g42.NextUInt64(), g42.NextUInt64()]);
    }

    [Fact]
    public void Empirical_frequencies_at_temperature_1_match_softmax()
    {
        float[] logits = [1f, 0.5f, -0.3f, 2f, 0f];
        var expected = Softmax(logits, 1);
        var sampler = new Sampler(new SamplingOptions(Temperature: 1, Seed: 2024));
        const int draws = 200_000;
        var counts = new int[logits.Length];
        for (int i = 0; i < draws; i++) counts[sampler.Next(logits, [])]++;
        for (int t = 0; t < logits.Length; t++)
        {
            double sigma = Math.Sqrt(expected[t] * (1 - expected[t]) / draws);
            Assert.True(Math.Abs(counts[t] / (double)draws - expected[t]) < 5 * sigma,
                $"token {t}: frequency {counts[t] / (double)draws:F4}, softmax {expected[t]:F4}");
        }
    }

    [Fact]
    public void Temperature_sharpens_the_distribution()
    {
        float[] logits = [1f, 0.5f, -0.3f, 2f, 0f];
        var probs = new double[5];
        new Sampler(new SamplingOptions(Temperature: 0.5f)).Distribution(logits, [], probs);
        Numerics.AssertClose(probs.Select(p => (float)p).ToArray(), Softmax(logits, 0.5), 1e-6, "T=0.5");
        // Huge logits over a tiny temperature must not overflow into NaN.
        new Sampler(new SamplingOptions(Temperature: 1e-6f)).Distribution([1000f, 999f], [], probs.AsSpan(0, 2));
        Assert.Equal(1.0, probs[0], 12);
        Assert.Equal(0.0, probs[1], 12);
    }

    [Fact]
    public void Top_k_keeps_the_k_best_renormalized_and_ties_at_the_boundary()
    {
        float[] logits = [1f, 3f, 2f, 0f, 2.5f];
        var probs = new double[5];
        new Sampler(new SamplingOptions(Temperature: 1, TopK: 2)).Distribution(logits, [], probs);
        var top2 = Softmax([3f, 2.5f], 1);
        Assert.Equal(top2[0], probs[1], 12);
        Assert.Equal(top2[1], probs[4], 12);
        Assert.Equal(0, probs[0] + probs[2] + probs[3]);

        new Sampler(new SamplingOptions(Temperature: 1, TopK: 2)).Distribution([1f, 2f, 2f, 3f, 0f], [], probs);
        Assert.True(probs[1] > 0 && probs[2] > 0 && probs[3] > 0, "tokens tied with the 2nd best stay");
        Assert.Equal(0, probs[0] + probs[4]);

        var sampler = new Sampler(new SamplingOptions(Temperature: 2, TopK: 2, Seed: 5));
        for (int i = 0; i < 1000; i++) Assert.Contains(sampler.Next(logits, []), new[] { 1, 4 });
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_reaching_p()
    {
        // softmax(log([0.5, 0.3, 0.15, 0.05])) = [0.5, 0.3, 0.15, 0.05]
        float[] logits = [MathF.Log(0.05f), MathF.Log(0.5f), MathF.Log(0.15f), MathF.Log(0.3f)];
        var probs = new double[4];
        void Check(float p, double[] expected)
        {
            new Sampler(new SamplingOptions(Temperature: 1, TopP: p)).Distribution(logits, [], probs);
            for (int i = 0; i < 4; i++) Assert.Equal(expected[i], probs[i], 6);
        }
        Check(0.5f, [0, 1, 0, 0]);                        // 0.5 alone reaches 0.5
        Check(0.6f, [0, 0.5 / 0.8, 0, 0.3 / 0.8]);        // 0.5 + 0.3
        Check(0.9f, [0, 0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95]);
        Check(1f, [0.05, 0.5, 0.15, 0.3]);

        // top-k first, then top-p on the renormalized survivors: top 2 = {0.625, 0.375}.
        new Sampler(new SamplingOptions(Temperature: 1, TopK: 2, TopP: 0.7f)).Distribution(logits, [], probs);
        Assert.Equal(0.625, probs[1], 6);                 // 0.625 < 0.7: the second survivor stays too
        Assert.Equal(0.375, probs[3], 6);
        new Sampler(new SamplingOptions(Temperature: 1, TopK: 2, TopP: 0.6f)).Distribution(logits, [], probs);
        Assert.Equal(1.0, probs[1], 12);
    }

    /// <summary>Naive reference: repetition penalty, softmax over all, top-k by full sort (ties kept), top-p by a full
    /// descending sort (ties by id) and a running sum; renormalized.</summary>
    static double[] ReferenceDistribution(float[] logits, int[] context, SamplingOptions o)
    {
        var s = (float[])logits.Clone();
        foreach (int t in context.Distinct()) s[t] = logits[t] > 0 ? logits[t] / o.RepetitionPenalty : logits[t] * o.RepetitionPenalty;
        var order = Enumerable.Range(0, s.Length).OrderByDescending(i => s[i]).ThenBy(i => i).ToArray();
        var kept = order.Where(i => !float.IsNegativeInfinity(s[i])).ToList();
        if (o.TopK > 0 && o.TopK < s.Length)
        {
            float kth = s[order[o.TopK - 1]];
            kept = kept.Where(i => s[i] >= kth).ToList();
        }
        double max = s[order[0]];
        var w = kept.ToDictionary(i => i, i => Math.Exp((s[i] - max) / o.Temperature));
        if (o.TopP < 1)
        {
            double target = o.TopP * w.Values.Sum(), cum = 0;
            int n = 0;
            while (n < kept.Count && (n == 0 || cum < target)) cum += w[kept[n++]];
            kept = kept.Take(n).ToList();
        }
        double mass = kept.Sum(i => w[i]);
        var p = new double[s.Length];
        foreach (int i in kept) p[i] = w[i] / mass;
        return p;
    }

    [Fact]
    public void Distribution_matches_a_naive_full_sort_reference()
    {
        var rng = new Random(99);
        var probs = new double[300];
        foreach (var o in new[]
        {
            new SamplingOptions(1f), new SamplingOptions(0.7f, TopP: 0.9f), new SamplingOptions(1.3f, TopK: 40, TopP: 0.8f),
            new SamplingOptions(0.2f, TopP: 0.5f, RepetitionPenalty: 1.3f), new SamplingOptions(2f, TopK: 7),
            new SamplingOptions(1f, TopP: 0.999f), new SamplingOptions(0.05f, TopP: 0.95f),
        })
        {
            for (int trial = 0; trial < 10; trial++)
            {
                var logits = Numerics.RandomFloats(rng, 300, 4f);
                for (int j = 0; j < 20; j++) logits[rng.Next(300)] = MathF.Round(logits[rng.Next(300)]); // ties
                logits[rng.Next(300)] = float.NegativeInfinity;
                var context = Enumerable.Range(0, 30).Select(_ => rng.Next(300)).ToArray();
                new Sampler(o).Distribution(logits, context, probs);
                var expected = ReferenceDistribution(logits, context, o);
                for (int i = 0; i < probs.Length; i++)
                    Assert.True(Math.Abs(probs[i] - expected[i]) < 1e-12, $"{o}: token {i} p={probs[i]} reference {expected[i]}");
            }
        }
    }

    [Fact]
    public void Masked_tokens_are_never_drawn()
    {
        float[] logits = [float.NegativeInfinity, 0f, float.NegativeInfinity, 0f];
        var sampler = new Sampler(new SamplingOptions(Temperature: 1, Seed: 9));
        for (int i = 0; i < 500; i++) Assert.Contains(sampler.Next(logits, []), new[] { 1, 3 });
    }

    [Fact]
    public void Invalid_options_and_inputs_are_peft_errors()
    {
        Assert.Contains("temperature", Assert.Throws<PeftException>(() => new Sampler(new SamplingOptions(Temperature: -0.1f))).Message);
        Assert.Throws<PeftException>(() => new Sampler(new SamplingOptions(Temperature: float.NaN)));
        Assert.Contains("top_p", Assert.Throws<PeftException>(() => new Sampler(new SamplingOptions(TopP: 0f))).Message);
        Assert.Throws<PeftException>(() => new Sampler(new SamplingOptions(TopP: 1.01f)));
        Assert.Throws<PeftException>(() => new Sampler(new SamplingOptions(TopP: float.NaN)));
        Assert.Contains("repetition_penalty", Assert.Throws<PeftException>(() => new Sampler(new SamplingOptions(RepetitionPenalty: 0f))).Message);
        Assert.Throws<PeftException>(() => new Sampler(new SamplingOptions(RepetitionPenalty: -1f)));
        Assert.Contains("top_k", Assert.Throws<PeftException>(() => new Sampler(new SamplingOptions(TopK: -1))).Message);

        var s = new Sampler(new SamplingOptions(Temperature: 1, RepetitionPenalty: 1.2f));
        Assert.Throws<PeftException>(() => s.Next([1f, float.NaN], []));
        Assert.Throws<PeftException>(() => s.Next([], []));
        Assert.Throws<PeftException>(() => s.Next([1f, 2f], [5]));
        Assert.Throws<PeftException>(() => s.Next([float.NegativeInfinity, float.NegativeInfinity], []));
        Assert.Throws<PeftException>(() => new Sampler(SamplingOptions.Greedy).Next([float.NegativeInfinity], []));
    }
}
