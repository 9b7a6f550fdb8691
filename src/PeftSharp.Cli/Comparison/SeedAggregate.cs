namespace PeftSharp.Cli.Comparison;

/// <summary>
/// Folds one method's runs over several seeds into one result: each figure is the mean over the seeds, its sample
/// standard deviation (n − 1) goes to <see cref="MethodResult.Spread"/>, the train-loss curve is the mean per step
/// with the lowest and highest seed as a band. A method counts as failed when any of its seeds failed, because a mean
/// over the survivors would not be the figure the other methods are compared with.
/// </summary>
internal static class SeedAggregate
{
    public static MethodResult Combine(IReadOnlyList<MethodResult> runs)
    {
        if (runs.Count == 0) throw new ArgumentException("no runs to combine", nameof(runs));
        if (runs.Count == 1) return runs[0];
        var seeds = runs.SelectMany(r => r.Seeds).ToList();
        var first = runs[0];
        if (runs.FirstOrDefault(r => !r.Succeeded) is { } failed)
            return failed with
            {
                Seeds = seeds,
                Error = $"seed {string.Join(",", failed.Seeds)}: {failed.Error}",
                TrainLoss = failed.TrainLoss,
            };
        return first with
        {
            Status = runs.Any(r => r.Status == MethodStatus.Trained) ? MethodStatus.Trained : MethodStatus.Reused,
            Seeds = seeds,
            Steps = first.Steps,
            FrozenWeightBytes = (long?)Mean(runs, r => r.FrozenWeightBytes),
            TrainableBytes = (long?)Mean(runs, r => r.TrainableBytes),
            OptimizerBytes = (long?)Mean(runs, r => r.OptimizerBytes),
            PeakRssMib = Mean(runs, r => r.PeakRssMib),
            TokensPerSecond = Mean(runs, r => r.TokensPerSecond),
            WallSeconds = Mean(runs, r => r.WallSeconds),
            FinalTrainLoss = Mean(runs, r => r.FinalTrainLoss),
            EvalLossBefore = Mean(runs, r => r.EvalLossBefore),
            EvalLoss = Mean(runs, r => r.EvalLoss),
            EvalPerplexity = Mean(runs, r => r.EvalPerplexity),
            ExactMatchBefore = Mean(runs, r => r.ExactMatchBefore),
            ExactMatch = Mean(runs, r => r.ExactMatch),
            SavedBytes = (long?)Mean(runs, r => r.SavedBytes),
            Spread = new MethodSpread
            {
                PeakRssMib = StdDev(runs, r => r.PeakRssMib),
                TokensPerSecond = StdDev(runs, r => r.TokensPerSecond),
                WallSeconds = StdDev(runs, r => r.WallSeconds),
                FinalTrainLoss = StdDev(runs, r => r.FinalTrainLoss),
                EvalLoss = StdDev(runs, r => r.EvalLoss),
                EvalPerplexity = StdDev(runs, r => r.EvalPerplexity),
                ExactMatch = StdDev(runs, r => r.ExactMatch),
            },
            TrainLoss = MeanCurve(runs.Select(r => r.TrainLoss).ToList()),
            TrainLossBand = Band(runs.Select(r => r.TrainLoss).ToList()),
            EvalLossCurve = MeanCurve(runs.Select(r => r.EvalLossCurve).ToList()),
        };
    }

    /// <summary>Mean over the runs; null when any run lacks the figure (a mean over some seeds would mislead).</summary>
    public static double? Mean(IReadOnlyList<MethodResult> runs, Func<MethodResult, double?> figure)
    {
        var v = runs.Select(figure).ToList();
        return v.Any(x => x == null) ? null : v.Average(x => x!.Value);
    }

    /// <summary>Sample standard deviation (n − 1); null when any run lacks the figure or there is one run.</summary>
    public static double? StdDev(IReadOnlyList<MethodResult> runs, Func<MethodResult, double?> figure)
    {
        var v = runs.Select(figure).ToList();
        if (v.Count < 2 || v.Any(x => x == null)) return null;
        double mean = v.Average(x => x!.Value);
        return Math.Sqrt(v.Sum(x => (x!.Value - mean) * (x.Value - mean)) / (v.Count - 1));
    }

    /// <summary>Per step that every run reached, the mean value.</summary>
    static List<CurvePoint> MeanCurve(IReadOnlyList<IReadOnlyList<CurvePoint>> curves) =>
        CommonSteps(curves).Select(g => new CurvePoint(g.Key, g.Average())).ToList();

    static List<BandPoint> Band(IReadOnlyList<IReadOnlyList<CurvePoint>> curves) =>
        CommonSteps(curves).Select(g => new BandPoint(g.Key, g.Min(), g.Max())).ToList();

    /// <summary>Values grouped by step, keeping only steps present in every curve (the last value when a step repeats).</summary>
    static IEnumerable<IGrouping<int, double>> CommonSteps(IReadOnlyList<IReadOnlyList<CurvePoint>> curves)
    {
        var perCurve = curves.Select(c => c.GroupBy(p => p.Step).ToDictionary(g => g.Key, g => g.Last().Value)).ToList();
        var steps = perCurve.Skip(1).Aggregate(new HashSet<int>(perCurve[0].Keys), (set, d) => { set.IntersectWith(d.Keys); return set; });
        return steps.Order().SelectMany(s => perCurve.Select(d => (s, v: d[s]))).GroupBy(x => x.s, x => x.v);
    }
}
