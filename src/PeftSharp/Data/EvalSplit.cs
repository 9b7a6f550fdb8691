namespace PeftSharp.Data;

/// <summary>Held-out evaluation examples by fraction: a seeded choice of round(fraction·n) items (at least one when the
/// fraction is positive, and at least one left for training); both parts keep the original order.</summary>
internal static class EvalSplit
{
    public static (List<T> Train, List<T> Eval) Split<T>(IReadOnlyList<T> items, double evalFraction, int seed)
    {
        if (!(evalFraction >= 0 && evalFraction < 1))
            throw new PeftException($"eval fraction must be in [0, 1), got {evalFraction}");
        if (evalFraction == 0) return (items.ToList(), []);
        if (items.Count < 2) throw new PeftException($"cannot hold out an eval split from {items.Count} example(s)");
        int evalCount = (int)Math.Round(evalFraction * items.Count, MidpointRounding.AwayFromZero);
        evalCount = Math.Clamp(evalCount, 1, items.Count - 1);
        var perm = SeededShuffle.Permutation(items.Count, SeededShuffle.EpochSeed(seed, -1));
        var isEval = new bool[items.Count];
        for (int i = 0; i < evalCount; i++) isEval[perm[i]] = true;
        var train = new List<T>(items.Count - evalCount);
        var eval = new List<T>(evalCount);
        for (int i = 0; i < items.Count; i++) (isEval[i] ? eval : train).Add(items[i]);
        return (train, eval);
    }
}
