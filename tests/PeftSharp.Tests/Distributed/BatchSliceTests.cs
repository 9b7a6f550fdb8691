using PeftSharp.Data;

namespace PeftSharp.Tests.Distributed;

/// <summary>A rank's share of a global batch: its rows in order, padding where the global batch runs short.</summary>
public class BatchSliceTests
{
    static Batch Global(int rows, int seq)
    {
        int n = rows * seq;
        return new Batch
        {
            BatchSize = rows, SeqLen = seq,
            InputIds = Enumerable.Range(0, n).Select(i => 100 + i).ToArray(),
            Targets = Enumerable.Range(0, n).Select(i => i % seq == seq - 1 ? -100 : 200 + i).ToArray(),
            Positions = Enumerable.Range(0, n).Select(i => i % seq).ToArray(),
            SegmentIds = Enumerable.Range(0, n).Select(i => (i % seq) / 2).ToArray(),   // 2 packed examples per row of 4
            TrainedTokens = rows * (seq - 1), ExampleCount = rows * 2,
        };
    }

    [Fact]
    public void Slices_of_a_full_batch_are_its_rows_in_order()
    {
        var g = Global(4, 4);
        var s = g.SliceRows(2, 2, padId: 7);
        Assert.Equal(2, s.BatchSize);
        Assert.Equal(g.InputIds[8..], s.InputIds);
        Assert.Equal(g.Targets[8..], s.Targets);
        Assert.Equal(g.Positions[8..], s.Positions);
        Assert.Equal(g.SegmentIds[8..], s.SegmentIds);
        Assert.Equal(6, s.TrainedTokens);
        Assert.Equal(4, s.ExampleCount);
    }

    [Fact]
    public void A_short_last_batch_leaves_later_ranks_padding_that_trains_nothing()
    {
        var g = Global(3, 4);   // the epoch's last batch: 3 rows of a global batch of 4
        var part = g.SliceRows(2, 2, padId: 7);
        Assert.Equal(g.InputIds[8..12], part.InputIds[..4]);
        Assert.All(part.InputIds[4..], id => Assert.Equal(7, id));
        Assert.All(part.Targets[4..], t => Assert.Equal(-100, t));
        Assert.All(part.SegmentIds[4..], x => Assert.Equal(Batch.PaddingSegment, x));
        Assert.Equal(3, part.TrainedTokens);
        Assert.Equal(2, part.ExampleCount);

        var none = Global(1, 4).SliceRows(2, 2, padId: 7);   // a rank past the end: all padding
        Assert.All(none.Targets, t => Assert.Equal(-100, t));
        Assert.Equal(0, none.TrainedTokens);
        Assert.Equal(0, none.ExampleCount);
    }
}
