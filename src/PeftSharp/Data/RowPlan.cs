namespace PeftSharp.Data;

/// <summary>
/// How examples, taken in a given order, are laid out into rows. Packing is greedy and keeps the order: an
/// example goes into the current row if it fits in what is left of MaxLength, otherwise it starts a new row
/// (the rest of the old row is padding). Examples longer than MaxLength are truncated to their first MaxLength
/// tokens or dropped (<see cref="OverlongPolicy"/>); examples left with no trained token are skipped.
/// </summary>
internal sealed class RowPlan
{
    /// <summary>Each row: (example index, tokens used) in order.</summary>
    public required List<List<(int Example, int Length)>> Rows { get; init; }
    public int Dropped { get; init; }
    public int Truncated { get; init; }
    public int WithoutTrainedTokens { get; init; }

    public static RowPlan Build(IReadOnlyList<EncodedExample> examples, IReadOnlyList<int> order, BatchOptions o)
    {
        o.Validate();
        var rows = new List<List<(int, int)>>();
        List<(int, int)>? current = null;
        int used = 0, dropped = 0, truncated = 0, untrained = 0;
        foreach (int idx in order)
        {
            var ex = examples[idx];
            int len = ex.Length;
            if (len > o.MaxLength)
            {
                if (o.Overlong == OverlongPolicy.Drop) { dropped++; continue; }
                len = o.MaxLength;
                truncated++;
            }
            if (!HasTrainedTarget(ex, len)) { untrained++; continue; }
            if (!o.Packing || current == null || used + len > o.MaxLength)
            {
                current = [];
                rows.Add(current);
                used = 0;
            }
            current.Add((idx, len));
            used += len;
        }
        return new RowPlan { Rows = rows, Dropped = dropped, Truncated = truncated, WithoutTrainedTokens = untrained };
    }

    private static bool HasTrainedTarget(EncodedExample ex, int len)
    {
        for (int i = 1; i < len; i++) if (ex.Labels[i] != EncodedExample.IgnoreIndex) return true;
        return false;
    }

    /// <summary>Materializes rows [first, first+count) as a batch.</summary>
    public Batch MakeBatch(IReadOnlyList<EncodedExample> examples, int first, int count, BatchOptions o)
    {
        int width = 0;
        for (int r = first; r < first + count; r++) width = Math.Max(width, Rows[r].Sum(x => x.Length));
        if (o.PadToMaxLength) width = o.MaxLength;
        int n = count * width;
        var ids = new int[n];
        var targets = new int[n];
        var pos = new int[n];
        var seg = new int[n];
        Array.Fill(ids, o.PadId);
        Array.Fill(targets, EncodedExample.IgnoreIndex);
        Array.Fill(seg, Batch.PaddingSegment);
        int trained = 0, exampleCount = 0;
        for (int r = 0; r < count; r++)
        {
            int offset = r * width;
            int s = 0;
            foreach (var (exIdx, len) in Rows[first + r])
            {
                var ex = examples[exIdx];
                for (int t = 0; t < len; t++)
                {
                    ids[offset + t] = ex.Ids[t];
                    pos[offset + t] = t;
                    seg[offset + t] = s;
                    // Target at t = label of token t+1 of the same example; the example's last token predicts nothing.
                    int target = t + 1 < len ? ex.Labels[t + 1] : EncodedExample.IgnoreIndex;
                    targets[offset + t] = target;
                    if (target != EncodedExample.IgnoreIndex) trained++;
                }
                offset += len;
                s++;
                exampleCount++;
            }
        }
        return new Batch
        {
            BatchSize = count, SeqLen = width, InputIds = ids, Targets = targets, Positions = pos, SegmentIds = seg,
            TrainedTokens = trained, ExampleCount = exampleCount,
        };
    }
}
