namespace PeftSharp.Data;

/// <summary>What to do with an example longer than <see cref="BatchOptions.MaxLength"/>.</summary>
internal enum OverlongPolicy
{
    /// <summary>Keep its first MaxLength tokens.</summary>
    Truncate,
    /// <summary>Leave it out (counted in <see cref="RowPlan.Dropped"/>).</summary>
    Drop,
}

internal sealed class BatchOptions
{
    /// <summary>Rows per batch.</summary>
    public int BatchSize { get; init; } = 1;
    /// <summary>Tokens per row at most (the model's training context).</summary>
    public int MaxLength { get; init; } = 2048;
    /// <summary>Pack several examples into a row (true) or one example per padded row (false).</summary>
    public bool Packing { get; init; } = true;
    public OverlongPolicy Overlong { get; init; } = OverlongPolicy.Truncate;
    /// <summary>Id written on padding (never trained on, never attended to).</summary>
    public int PadId { get; init; }
    /// <summary>Every batch MaxLength wide; otherwise as wide as its longest row.</summary>
    public bool PadToMaxLength { get; init; }

    internal void Validate()
    {
        if (BatchSize < 1) throw new PeftException($"batch size must be at least 1, got {BatchSize}");
        if (MaxLength < 2) throw new PeftException($"maximum sequence length must be at least 2 tokens, got {MaxLength}");
    }
}
