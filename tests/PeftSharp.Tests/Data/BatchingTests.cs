using PeftSharp.Data;

namespace PeftSharp.Tests.Data;

public class BatchingTests
{
    private const int Ign = EncodedExample.IgnoreIndex;

    /// <summary>An example with ids base, base+1, ...; the first <paramref name="masked"/> labels are −100.</summary>
    private static EncodedExample Ex(int baseId, int length, int masked = 0) => new()
    {
        Ids = Enumerable.Range(baseId, length).ToArray(),
        Labels = Enumerable.Range(baseId, length).Select((id, i) => i < masked ? Ign : id).ToArray(),
        File = "t", Line = baseId,
    };

    private static int[] Row(int[] a, Batch b, int r) => a.AsSpan(r * b.SeqLen, b.SeqLen).ToArray();

    [Fact]
    public void PackingKeepsExamplesApart()
    {
        var examples = new[] { Ex(100, 3, masked: 1), Ex(200, 4), Ex(300, 2) };
        var o = new BatchOptions { BatchSize = 1, MaxLength = 10, PadId = 0 };
        var plan = RowPlan.Build(examples, [0, 1, 2], o);
        Assert.Single(plan.Rows);
        var b = plan.MakeBatch(examples, 0, 1, o);
        Assert.Equal(9, b.SeqLen);
        Assert.Equal([100, 101, 102, 200, 201, 202, 203, 300, 301], b.InputIds);
        Assert.Equal([0, 1, 2, 0, 1, 2, 3, 0, 1], b.Positions);
        Assert.Equal([0, 0, 0, 1, 1, 1, 1, 2, 2], b.SegmentIds);
        // Target = the next token's label within the same example; the last token of each example predicts nothing.
        Assert.Equal([101, 102, Ign, 201, 202, 203, Ign, 301, Ign], b.Targets);
        Assert.Equal(6, b.TrainedTokens);
        Assert.Equal(3, b.ExampleCount);
    }

    [Fact]
    public void MaskedPromptLabelsBecomeIgnoredTargets()
    {
        var examples = new[] { Ex(10, 5, masked: 3) };   // labels: -100 -100 -100 13 14
        var o = new BatchOptions { MaxLength = 8 };
        var b = RowPlan.Build(examples, [0], o).MakeBatch(examples, 0, 1, o);
        Assert.Equal([Ign, Ign, 13, 14, Ign], b.Targets);
        Assert.Equal(2, b.TrainedTokens);
    }

    [Fact]
    public void GreedyPackingStartsANewRowWhenFull()
    {
        var examples = new[] { Ex(100, 4), Ex(200, 4), Ex(300, 3), Ex(400, 5) };
        var o = new BatchOptions { BatchSize = 2, MaxLength = 8, PadId = 7 };
        var plan = RowPlan.Build(examples, [0, 1, 2, 3], o);
        Assert.Equal([[0, 1], [2, 3]], plan.Rows.Select(r => r.Select(x => x.Example).ToArray()));
        var b = plan.MakeBatch(examples, 0, 2, o);
        Assert.Equal((2, 8), (b.BatchSize, b.SeqLen));
        Assert.Equal([300, 301, 302, 400, 401, 402, 403, 404], Row(b.InputIds, b, 1));
        Assert.Equal([0, 0, 0, 1, 1, 1, 1, 1], Row(b.SegmentIds, b, 1));
    }

    [Fact]
    public void PaddingModePutsOneExamplePerRow()
    {
        var examples = new[] { Ex(100, 3), Ex(200, 5) };
        var o = new BatchOptions { BatchSize = 2, MaxLength = 8, Packing = false, PadId = 9 };
        var plan = RowPlan.Build(examples, [0, 1], o);
        var b = plan.MakeBatch(examples, 0, 2, o);
        Assert.Equal(5, b.SeqLen);
        Assert.Equal([100, 101, 102, 9, 9], Row(b.InputIds, b, 0));
        Assert.Equal([0, 0, 0, -1, -1], Row(b.SegmentIds, b, 0));
        Assert.Equal([101, 102, Ign, Ign, Ign], Row(b.Targets, b, 0));
        Assert.Equal([0, 1, 2, 0, 0], Row(b.Positions, b, 0));
        var fixedWidth = plan.MakeBatch(examples, 0, 2, new BatchOptions { BatchSize = 2, MaxLength = 8, Packing = false, PadToMaxLength = true });
        Assert.Equal(8, fixedWidth.SeqLen);
    }

    [Fact]
    public void TruncationAndDrop()
    {
        var examples = new[] { Ex(100, 12), Ex(200, 3), Ex(300, 6, masked: 6) };
        var trunc = new BatchOptions { MaxLength = 5 };
        var plan = RowPlan.Build(examples, [0, 1, 2], trunc);
        Assert.Equal(2, plan.Truncated);                 // example 0 and the fully masked example 2
        Assert.Equal(1, plan.WithoutTrainedTokens);      // example 2 has nothing to train on
        Assert.Equal([[(0, 5)], [(1, 3)]], plan.Rows.Select(r => r.ToArray()));
        var b = plan.MakeBatch(examples, 0, 1, trunc);
        Assert.Equal([100, 101, 102, 103, 104], b.InputIds);
        Assert.Equal([101, 102, 103, 104, Ign], b.Targets);

        var drop = RowPlan.Build(examples, [0, 1, 2], new BatchOptions { MaxLength = 5, Overlong = OverlongPolicy.Drop });
        Assert.Equal(2, drop.Dropped);
        Assert.Equal([[(1, 3)]], drop.Rows.Select(r => r.ToArray()));
    }

    private static List<EncodedExample> Many(int n) => Enumerable.Range(0, n).Select(i => Ex(1000 * (i + 1), 2 + i % 5)).ToList();

    [Fact]
    public void LoaderPositionRestoresTheSameBatches()
    {
        var examples = Many(23);
        var o = new BatchOptions { BatchSize = 2, MaxLength = 9, PadId = 0 };
        var a = new DataLoader(examples, o, seed: 5);
        var seen = new List<int[]>();
        DataLoaderPosition saved = default;
        int total = a.BatchesInEpoch(0) + 3;   // run into the second epoch
        for (int i = 0; i < total + 4; i++)
        {
            if (i == total - 2) saved = a.Position;
            seen.Add(a.Next().InputIds);
        }
        Assert.True(a.Position.Epoch >= 1);   // crossed an epoch boundary
        var b = new DataLoader(examples, o, seed: 5);
        b.Seek(saved);
        for (int i = total - 2; i < seen.Count; i++) Assert.Equal(seen[i], b.Next().InputIds);
    }

    [Fact]
    public void EpochsAreShuffledDeterministicallyAndCoverEveryExampleOnce()
    {
        var examples = Many(30);
        var o = new BatchOptions { BatchSize = 1, MaxLength = 8, Packing = false };
        var loader = new DataLoader(examples, o, seed: 1);
        int[] FirstIds(int epoch) => loader.EpochBatches(epoch).Select(b => b.InputIds[0]).ToArray();
        var e0 = FirstIds(0);
        Assert.Equal(examples.Select(e => e.Ids[0]).Order(), e0.Order());
        Assert.NotEqual(e0, FirstIds(1));
        Assert.Equal(e0, new DataLoader(examples, o, seed: 1).EpochBatches(0).Select(b => b.InputIds[0]));
        Assert.NotEqual(e0, new DataLoader(examples, o, seed: 2).EpochBatches(0).Select(b => b.InputIds[0]));
        var ordered = new DataLoader(examples, o, seed: 1, shuffle: false).EpochBatches(0).Select(b => b.InputIds[0]);
        Assert.Equal(examples.Select(e => e.Ids[0]), ordered);
    }

    [Fact]
    public void SeekPastTheEndIsAnError()
    {
        var loader = new DataLoader(Many(4), new BatchOptions { MaxLength = 8, Packing = false }, seed: 0);
        Assert.Contains("past the end", Assert.Throws<PeftException>(() => loader.Seek(new DataLoaderPosition(0, 99))).Message);
    }

    [Fact]
    public void EvalSplitSizesAndDeterminism()
    {
        var items = Enumerable.Range(0, 50).ToList();
        var (train, eval) = EvalSplit.Split(items, 0.1, seed: 3);
        Assert.Equal((45, 5), (train.Count, eval.Count));
        Assert.Equal(items, train.Concat(eval).Order());
        Assert.True(train.SequenceEqual(train.Order()) && eval.SequenceEqual(eval.Order()));   // original order kept
        Assert.Equal(eval, EvalSplit.Split(items, 0.1, seed: 3).Eval);
        Assert.NotEqual(eval, EvalSplit.Split(items, 0.1, seed: 4).Eval);
        Assert.Single(EvalSplit.Split(items.Take(3).ToList(), 0.01, seed: 0).Eval);         // at least one
        Assert.Empty(EvalSplit.Split(items, 0, seed: 0).Eval);
        Assert.Throws<PeftException>(() => EvalSplit.Split(items, 1.0, seed: 0));
    }
}
