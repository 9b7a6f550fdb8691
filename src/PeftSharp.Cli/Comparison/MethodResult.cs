namespace PeftSharp.Cli.Comparison;

internal enum MethodStatus
{
    /// <summary>Trained in this invocation.</summary>
    Trained,
    /// <summary>Finished in an earlier invocation (summary.json present); not run again.</summary>
    Reused,
    /// <summary>The training process failed (e.g. the trainer rejected the method); see <see cref="MethodResult.Error"/>.</summary>
    Failed,
}

/// <summary>One point of a curve (train loss or eval loss against the optimizer step).</summary>
internal sealed record CurvePoint(int Step, double Value);

/// <summary>The lowest and highest value over the seeds at one step (the shaded band around a mean curve).</summary>
internal sealed record BandPoint(int Step, double Low, double High);

/// <summary>Everything measured for one method. Measurements are null when the run failed or did not produce them.</summary>
internal sealed record MethodResult
{
    public required string Method { get; init; }
    public required MethodStatus Status { get; init; }
    /// <summary>The training process's error line when <see cref="Status"/> is Failed.</summary>
    public string? Error { get; init; }
    public required double LearningRate { get; init; }
    public string? LogFile { get; init; }

    public int? Steps { get; init; }
    public long? TrainableParameters { get; init; }
    public long? TotalParameters { get; init; }
    public double? TrainablePercent => TrainableParameters is long t && TotalParameters is long n && n > 0 ? 100.0 * t / n : null;
    public long? FrozenWeightBytes { get; init; }
    public long? TrainableBytes { get; init; }
    public long? OptimizerBytes { get; init; }
    /// <summary>Peak resident set of the training process itself (VmHWM, measured inside the child), in MiB.</summary>
    public double? PeakRssMib { get; init; }
    public double? TokensPerSecond { get; init; }
    public double? WallSeconds { get; init; }
    public double? FinalTrainLoss { get; init; }
    public double? EvalLossBefore { get; init; }
    public double? EvalLoss { get; init; }
    public double? EvalPerplexity { get; init; }
    /// <summary>Exact match on the eval set's completions, when the data set defines a completion task.</summary>
    public double? ExactMatchBefore { get; init; }
    public double? ExactMatch { get; init; }
    /// <summary>Bytes of the saved result: the adapter folder (adapters) or the full model folder (full fine-tuning).</summary>
    public long? SavedBytes { get; init; }
    public string? SavedDir { get; init; }
    public IReadOnlyList<CurvePoint> TrainLoss { get; init; } = [];
    public IReadOnlyList<CurvePoint> EvalLossCurve { get; init; } = [];

    /// <summary>The seeds behind this result: one for a single run; several when it is the mean over
    /// <c>--seeds N</c> runs (then <see cref="Spread"/> holds their sample standard deviations).</summary>
    public IReadOnlyList<int> Seeds { get; init; } = [];
    /// <summary>Sample standard deviation over the seeds (null for a single run).</summary>
    public MethodSpread? Spread { get; init; }
    /// <summary>Per step, the lowest and highest train loss over the seeds (empty for a single run).</summary>
    public IReadOnlyList<BandPoint> TrainLossBand { get; init; } = [];

    public bool Succeeded => Status != MethodStatus.Failed;
}

/// <summary>Sample standard deviations (n − 1) over a method's seeds, in the units of the figures they belong to.</summary>
internal sealed record MethodSpread
{
    public double? PeakRssMib { get; init; }
    public double? TokensPerSecond { get; init; }
    public double? WallSeconds { get; init; }
    public double? FinalTrainLoss { get; init; }
    public double? EvalLoss { get; init; }
    public double? EvalPerplexity { get; init; }
    public double? ExactMatch { get; init; }
}
