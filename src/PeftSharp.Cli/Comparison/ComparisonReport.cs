namespace PeftSharp.Cli.Comparison;

/// <summary>The settings, one result per method (in run order; the mean over the seeds when there are several), every
/// single run, and the seed documents' claims checked against the results.</summary>
internal sealed record ComparisonReport
{
    public required ComparisonSettings Settings { get; init; }
    public required IReadOnlyList<MethodResult> Results { get; init; }
    /// <summary>Every run, one per method and seed (the same as <see cref="Results"/> with one seed).</summary>
    public IReadOnlyList<MethodResult> Runs { get; init; } = [];
    public required IReadOnlyList<ClaimCheck> Claims { get; init; }
    public DateTimeOffset CreatedUtc { get; init; }
    public string Machine { get; init; } = "";

    public MethodResult? Find(string method) => Results.FirstOrDefault(r => r.Method == method && r.Succeeded);

    /// <summary>Settings that differ between methods on purpose (stated in every report).</summary>
    public IEnumerable<string> DeliberateDifferences() => Results
        .Where(r => r.LearningRate != Settings.LearningRate)
        .Select(r => $"{r.Method} uses learning rate {Fmt.Sci(r.LearningRate)} instead of {Fmt.Sci(Settings.LearningRate)}" +
                     (r.Method == "full" ? " (full fine-tuning updates every weight and diverges at adapter learning rates)" : " (--lr-override)"));
}
