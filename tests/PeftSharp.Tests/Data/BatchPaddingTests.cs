using PeftSharp.Data;

namespace PeftSharp.Tests.Data;

public class BatchPaddingTests
{
    [Fact]
    public void PadTo_AddsRowsThatAreNeitherTrainedNorAttended()
    {
        var b = new Batch
        {
            BatchSize = 1, SeqLen = 3, InputIds = [5, 6, 7], Targets = [6, 7, -100], Positions = [0, 1, 2], SegmentIds = [0, 0, 0],
            TrainedTokens = 2, ExampleCount = 1,
        };
        var p = b.PadTo(3, padId: 9);
        Assert.Equal(3, p.BatchSize);
        Assert.Equal([5, 6, 7, 9, 9, 9, 9, 9, 9], p.InputIds);
        Assert.Equal([6, 7, -100, -100, -100, -100, -100, -100, -100], p.Targets);
        Assert.Equal([0, 0, 0, -1, -1, -1, -1, -1, -1], p.SegmentIds);
        Assert.Equal(2, p.TrainedTokens);
        Assert.Same(b, b.PadTo(1, 9));
    }
}
