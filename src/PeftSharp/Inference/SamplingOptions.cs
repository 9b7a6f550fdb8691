namespace PeftSharp.Inference;

/// <summary>
/// How the next token is chosen. Temperature 0 = greedy (argmax). Otherwise, in the order transformers applies them:
/// repetition penalty, temperature, top-k (0 = off), top-p (1 = off); then a draw from the seeded generator.
/// </summary>
/// <param name="Temperature">Divides the logits; 0 = greedy (default), otherwise finite and &gt; 0.</param>
/// <param name="TopK">Keep only the k most likely tokens (default 0 = off).</param>
/// <param name="TopP">Keep the smallest set of most likely tokens whose probability reaches p, in (0, 1] (default 1 = off).</param>
/// <param name="RepetitionPenalty">Divides positive logits of tokens already in the sequence (multiplies negative
/// ones), &gt; 0 (default 1 = off).</param>
/// <param name="Seed">Seed of the random draw (default 0); the same seed gives the same tokens.</param>
public sealed record SamplingOptions(float Temperature = 0, int TopK = 0, float TopP = 1, float RepetitionPenalty = 1, ulong Seed = 0)
{
    /// <summary>Temperature 0: always the most likely token.</summary>
    public static SamplingOptions Greedy { get; } = new();

    /// <summary>True when <see cref="Temperature"/> is 0 (argmax; the other options are then unused).</summary>
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
