namespace PeftSharp.Nn;

/// <summary>
/// Which adapter each row of a pass uses: one adapter (or none) for every row, as in training and single-request
/// inference, or consecutive row segments with an adapter each, as in a batch that decodes requests for different
/// adapters together (S-LoRA style: the base projection runs once over all rows, each adapter over its own rows).
/// A segment may also replace the embedding and the LM head (PEFT's modules_to_save).
/// </summary>
internal sealed class AdapterRouting
{
    readonly RowSegment[] _segments;

    AdapterRouting(RowSegment[] segments, bool whole)
    {
        _segments = segments;
        IsWhole = whole;
    }

    /// <summary>No adapter on any row (the base model).</summary>
    public static AdapterRouting None { get; } = new([new RowSegment(0, RowSegment.ToEnd, null, null, null)], true);

    /// <summary>Every row uses <paramref name="adapter"/> (null: none), with optional modules_to_save replacements.</summary>
    public static AdapterRouting All(string? adapter, Parameter? embed = null, Parameter? lmHead = null) =>
        adapter == null && embed == null && lmHead == null ? None
            : new([new RowSegment(0, RowSegment.ToEnd, adapter, embed, lmHead)], true);

    /// <summary>Consecutive non-empty segments covering the rows in order.</summary>
    public static AdapterRouting Segmented(IReadOnlyList<RowSegment> segments)
    {
        if (segments.Count == 0) throw new ArgumentException("a segmented routing needs at least one segment");
        int next = 0;
        foreach (var s in segments)
        {
            if (s.Start != next || s.Count <= 0) throw new ArgumentException($"row segments must be consecutive and non-empty (segment at {s.Start}, expected {next})");
            next += s.Count;
        }
        return new(segments.ToArray(), false);
    }

    /// <summary>True when one segment covers every row, whatever their number.</summary>
    public bool IsWhole { get; }

    /// <summary>The first segment (the only one when <see cref="IsWhole"/>).</summary>
    public ref readonly RowSegment First => ref _segments[0];

    /// <summary>The segments; a segment's row count over a pass of <c>rows</c> rows is <see cref="RowSegment.CountIn"/>.</summary>
    public ReadOnlySpan<RowSegment> Segments => _segments;

    /// <summary>Throws unless the segments cover exactly <paramref name="rows"/> rows.</summary>
    public void Check(int rows)
    {
        if (IsWhole) return;
        var last = _segments[^1];
        if (last.Start + last.Count != rows) throw new ArgumentException($"the routing covers {last.Start + last.Count} rows but the pass has {rows}");
    }

    /// <summary>Adapter names used (each once).</summary>
    public IEnumerable<string> Adapters => _segments.Select(s => s.Adapter).OfType<string>().Distinct();
}

/// <summary>Rows [Start, Start + Count) use <paramref name="Adapter"/> (null: the base only); Count = <see cref="ToEnd"/>
/// runs to the last row.</summary>
internal readonly record struct RowSegment(int Start, int Count, string? Adapter, Parameter? Embed, Parameter? LmHead)
{
    public const int ToEnd = -1;

    /// <summary>The segment's row count in a pass of <paramref name="rows"/> rows.</summary>
    public int CountIn(int rows) => Count == ToEnd ? rows - Start : Count;
}
