namespace PeftSharp.Data;

/// <summary>
/// One training batch, row-major (BatchSize rows of SeqLen tokens). Each row holds one example (padding) or
/// several packed examples; attention must only connect positions with the same <see cref="SegmentIds"/> value
/// (and causally), and positions restart at 0 for each example, so packed examples never see each other.
/// </summary>
internal sealed class Batch
{
    public required int BatchSize { get; init; }
    public required int SeqLen { get; init; }
    /// <summary>(B·T) token ids; padding holds the pad id.</summary>
    public required int[] InputIds { get; init; }
    /// <summary>(B·T) the id to predict at each position: the label of the NEXT token of the same example
    /// (already shifted), or −100 where nothing is trained (masked prompt, the example's last token, padding).</summary>
    public required int[] Targets { get; init; }
    /// <summary>(B·T) position ids, 0 at the start of every packed example; 0 on padding.</summary>
    public required int[] Positions { get; init; }
    /// <summary>(B·T) index of the example within its row (0, 1, ...); −1 on padding.</summary>
    public required int[] SegmentIds { get; init; }
    /// <summary>Number of targets that are not −100 (the loss denominator).</summary>
    public required int TrainedTokens { get; init; }
    /// <summary>Number of examples in the batch.</summary>
    public required int ExampleCount { get; init; }

    public const int PaddingSegment = -1;

    /// <summary>This batch grown to <paramref name="rows"/> rows with all-padding rows (nothing trained or attended),
    /// so every step runs at one shape and reuses one set of buffers.</summary>
    public Batch PadTo(int rows, int padId)
    {
        if (rows <= BatchSize) return this;
        int n = rows * SeqLen, have = BatchSize * SeqLen;
        int[] Grow(int[] a, int fill)
        {
            var r = new int[n];
            a.CopyTo(r, 0);
            Array.Fill(r, fill, have, n - have);
            return r;
        }
        return new Batch
        {
            BatchSize = rows, SeqLen = SeqLen, InputIds = Grow(InputIds, padId), Targets = Grow(Targets, -100),
            Positions = Grow(Positions, 0), SegmentIds = Grow(SegmentIds, PaddingSegment),
            TrainedTokens = TrainedTokens, ExampleCount = ExampleCount,
        };
    }

    /// <summary>Rows [<paramref name="first"/>, first + <paramref name="rows"/>) of this batch, padded with all-padding
    /// rows where the batch is shorter: one rank's share of a global batch in data-parallel training.</summary>
    public Batch SliceRows(int first, int rows, int padId)
    {
        if (first < 0 || rows <= 0) throw new ArgumentOutOfRangeException(nameof(first), $"rows [{first}, {first + rows}) of a {BatchSize}-row batch");
        int have = Math.Clamp(BatchSize - first, 0, rows), n = rows * SeqLen, len = have * SeqLen;
        int from = have > 0 ? first * SeqLen : 0;   // a rank past the end of a short last batch copies nothing
        int[] Cut(int[] a, int fill)
        {
            var r = new int[n];
            Array.Copy(a, from, r, 0, len);
            Array.Fill(r, fill, len, n - len);
            return r;
        }
        var seg = Cut(SegmentIds, PaddingSegment);
        var targets = Cut(Targets, -100);
        int examples = 0;
        for (int row = 0; row < have; row++)
        {
            int max = -1;
            for (int t = 0; t < SeqLen; t++) max = Math.Max(max, seg[row * SeqLen + t]);
            examples += max + 1;
        }
        return new Batch
        {
            BatchSize = rows, SeqLen = SeqLen, InputIds = Cut(InputIds, padId), Targets = targets,
            Positions = Cut(Positions, 0), SegmentIds = seg, TrainedTokens = targets.Count(t => t != -100), ExampleCount = examples,
        };
    }
}
