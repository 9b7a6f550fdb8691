namespace PeftSharp.Training;

/// <summary>Learning rate per optimizer step, transformers' schedules: linear warmup from 0, then constant, linear
/// decay to 0, or half-cosine decay to 0 at the last step.</summary>
internal sealed record LrSchedule(string Kind, double PeakLr, int WarmupSteps, int TotalSteps)
{
    public static readonly string[] Kinds = ["constant", "linear", "cosine"];

    /// <summary>lr used for optimizer step <paramref name="step"/> (0-based).</summary>
    public double At(int step)
    {
        if (!Kinds.Contains(Kind)) throw new PeftException($"lr_scheduler_type \"{Kind}\" is not supported (expected {string.Join(", ", Kinds)})");
        if (WarmupSteps > 0 && step < WarmupSteps) return PeakLr * step / WarmupSteps;
        double progress = TotalSteps <= WarmupSteps ? 0 : (double)(step - WarmupSteps) / (TotalSteps - WarmupSteps);
        progress = Math.Clamp(progress, 0, 1);
        return Kind switch
        {
            "constant" => PeakLr,
            "linear" => PeakLr * (1 - progress),
            "cosine" => PeakLr * 0.5 * (1 + Math.Cos(Math.PI * progress)),
            _ => throw new PeftException($"lr_scheduler_type \"{Kind}\" is not supported (expected {string.Join(", ", Kinds)})"),
        };
    }
}
