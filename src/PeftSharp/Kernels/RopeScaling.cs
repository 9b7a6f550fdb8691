namespace PeftSharp.Kernels;

/// <summary>
/// HF `rope_scaling`: Type "default" (none), "linear" (positions divided by Factor), "llama3" (per-frequency
/// smoothing between LowFreqFactor and HighFreqFactor over OriginalMaxPositions) or "longrope" (Phi-3/3.5 128k:
/// per-frequency divisors <see cref="ShortFactor"/> for sequences up to OriginalMaxPositions tokens and
/// <see cref="LongFactor"/> beyond, cos and sin multiplied by <see cref="AttentionFactor"/>; build it with
/// <see cref="LongRope"/>).
/// </summary>
public sealed record RopeScaling(string Type, double Factor = 1, double LowFreqFactor = 1, double HighFreqFactor = 4,
    int OriginalMaxPositions = 8192)
{
    /// <summary>longrope: one divisor per rotated frequency (head_dim/2), used while a forward's longest sequence is at
    /// most <see cref="RopeScaling.OriginalMaxPositions"/> tokens.</summary>
    public IReadOnlyList<double>? ShortFactor { get; init; }

    /// <summary>longrope: the divisors used when a forward's longest sequence exceeds OriginalMaxPositions.</summary>
    public IReadOnlyList<double>? LongFactor { get; init; }

    /// <summary>longrope: the multiplier of cos and sin (both factor sets), resolved when built: the config's
    /// `attention_factor`, else √(1 + ln(Factor) / ln(OriginalMaxPositions)) when Factor &gt; 1, else 1. 1 for other types.</summary>
    public double AttentionFactor { get; init; } = 1;

    /// <summary>LongRoPE as transformers' `_compute_longrope_parameters`: Factor = max_position_embeddings /
    /// original_max_position_embeddings (or the given <paramref name="factor"/> when the config names no original
    /// length), and the attention factor from it unless <paramref name="attentionFactor"/> is given.</summary>
    /// <param name="shortFactor">Divisors for sequences up to <paramref name="originalMaxPositions"/> tokens.</param>
    /// <param name="longFactor">Divisors beyond.</param>
    /// <param name="originalMaxPositions">The pretrained context length (`original_max_position_embeddings`).</param>
    /// <param name="factor">The context extension ratio (max_position_embeddings / original).</param>
    /// <param name="attentionFactor">An explicit cos/sin multiplier, or null to derive it.</param>
    public static RopeScaling LongRope(IReadOnlyList<double> shortFactor, IReadOnlyList<double> longFactor,
        int originalMaxPositions, double factor, double? attentionFactor = null)
    {
        if (originalMaxPositions <= 0) throw new PeftException($"longrope original_max_position_embeddings must be positive, got {originalMaxPositions}");
        if (!(factor > 0)) throw new PeftException($"longrope scaling factor must be positive, got {factor}");
        double attention = attentionFactor
            ?? (factor <= 1 ? 1 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(originalMaxPositions)));
        return new RopeScaling("longrope", factor, OriginalMaxPositions: originalMaxPositions)
        {
            ShortFactor = shortFactor.ToArray(),
            LongFactor = longFactor.ToArray(),
            AttentionFactor = attention,
        };
    }

    /// <summary>Value equality, element-wise on the factor lists.</summary>
    public bool Equals(RopeScaling? other) =>
        other is not null && Type == other.Type && Factor.Equals(other.Factor) && LowFreqFactor.Equals(other.LowFreqFactor)
        && HighFreqFactor.Equals(other.HighFreqFactor) && OriginalMaxPositions == other.OriginalMaxPositions
        && AttentionFactor.Equals(other.AttentionFactor) && SameList(ShortFactor, other.ShortFactor) && SameList(LongFactor, other.LongFactor);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Type, Factor, OriginalMaxPositions, ShortFactor?.Count, LongFactor?.Count);

    static bool SameList(IReadOnlyList<double>? a, IReadOnlyList<double>? b) =>
        a is null ? b is null : b is not null && a.SequenceEqual(b);
}
