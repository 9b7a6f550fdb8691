using PeftSharp.Cli.Comparison;
using static PeftSharp.Tests.Comparison.ComparisonFixtures;

namespace PeftSharp.Tests.Comparison;

public class SeedAggregateTests
{
    static MethodResult Run(int seed, double evalLoss, double tps, double[] curve) => Result("lora", evalLoss, 300 + seed % 2, tps, 0.5) with
    {
        Seeds = [seed],
        TrainLoss = curve.Select((v, i) => new CurvePoint(i + 1, v)).ToList(),
    };

    [Fact]
    public void Several_seeds_give_the_mean_the_sample_standard_deviation_and_a_min_max_band()
    {
        var runs = new[] { Run(42, 2.0, 900, [3, 2]), Run(43, 2.2, 1000, [4, 2.5]), Run(44, 2.4, 1100, [5, 1.5]) };
        var m = SeedAggregate.Combine(runs);
        Assert.Equal([42, 43, 44], m.Seeds);
        Assert.Equal(2.2, m.EvalLoss!.Value, 12);
        Assert.Equal(0.2, m.Spread!.EvalLoss!.Value, 12);            // sqrt((0.04 + 0 + 0.04) / 2)
        Assert.Equal(1000, m.TokensPerSecond!.Value, 12);
        Assert.Equal(100, m.Spread.TokensPerSecond!.Value, 12);
        Assert.Equal(0, m.Spread.ExactMatch!.Value, 12);
        Assert.Equal(Math.Sqrt(1.0 / 3), m.Spread.PeakRssMib!.Value, 12);   // 300, 301, 300
        Assert.Equal([new CurvePoint(1, 4), new CurvePoint(2, 2)], m.TrainLoss);
        Assert.Equal([new BandPoint(1, 3, 5), new BandPoint(2, 1.5, 2.5)], m.TrainLossBand);
        Assert.Equal(MethodStatus.Trained, m.Status);
    }

    [Fact]
    public void One_seed_is_passed_through_and_a_failed_seed_fails_the_method()
    {
        var one = Run(42, 2.0, 900, [3, 2]);
        Assert.Same(one, SeedAggregate.Combine([one]));
        Assert.Null(one.Spread);
        var failed = Failed("lora", "error: out of memory") with { Seeds = [43] };
        var m = SeedAggregate.Combine([one, failed]);
        Assert.Equal(MethodStatus.Failed, m.Status);
        Assert.Equal("seed 43: error: out of memory", m.Error);
        Assert.Null(m.EvalLoss);
    }

    [Fact]
    public void Curves_keep_only_the_steps_every_seed_reached()
    {
        var m = SeedAggregate.Combine([Run(42, 2, 900, [3, 2, 1]), Run(43, 2, 900, [5, 4])]);
        Assert.Equal([1, 2], m.TrainLoss.Select(p => p.Step));
        Assert.Equal(4, m.TrainLoss[0].Value, 12);
    }
}
