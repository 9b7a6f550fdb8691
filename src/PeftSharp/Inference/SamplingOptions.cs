namespace PeftSharp.Inference;

/// <summary>
/// How the next token is chosen. Temperature 0 = greedy (argmax). Otherwise, in the order transformers applies them:
/// repetition penalty, temperature, top-k (0 = off), top-p (1 = off); then a draw from the seeded generator.
/// </summary>
public sealed record SamplingOptions(float Temperature = 0, int TopK = 0, float TopP = 1, float RepetitionPenalty = 1, ulong Seed = 0)
{
    public static SamplingOptions Greedy { get; } = new();

    public bool IsGreedy => Temperature == 0;

    /// <summary>Throws <see cref="PeftException"/> naming the first option outside its range.</summary>
    public void Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature))
            throw new PeftException($"temperature must be a finite number ≥ 0 (0 = greedy), got {Temperature}");
        if (TopK < 0)
            throw new PeftException($"top_k must be ≥ 0 (0 = off), got {TopK}");
        if (!(TopP > 0 && TopP <= 1))
            throw new PeftException($"top_p must be in (0, 1] (1 = off), got {TopP}");
        if (!(RepetitionPenalty > 0) || float.IsInfinity(RepetitionPenalty))
            throw new PeftException($"repetition_penalty must be a finite number > 0 (1 = off), got {RepetitionPenalty}");
    }
}
