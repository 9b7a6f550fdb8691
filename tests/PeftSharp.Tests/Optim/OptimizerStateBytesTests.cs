using PeftSharp.Tests.TestSupport;
using PeftSharp.Optim;

namespace PeftSharp.Tests.Optim;

public class OptimizerStateBytesTests
{
    /// <summary>StateBytes (no copy) equals the bytes SaveState writes, less its 8-byte step counter.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StateBytes_MatchesSavedState(bool eightBit)
    {
        Optimizer opt = eightBit ? new AdamW8bit(TestCompute.Cpu) : new AdamW(TestCompute.Cpu);
        Assert.Equal(0, opt.StateBytes);
        var rng = new Random(1);
        var sizes = new[] { 100, 5000, 70000 };   // below and above the 4096-element 8-bit threshold
        var values = sizes.Select(n => new float[n]).ToArray();
        var grads = sizes.Select(n => Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray()).ToArray();
        opt.BeginStep();
        for (int i = 0; i < sizes.Length; i++) opt.Step(i, values[i], grads[i], 1e-3f);
        var saved = opt.SaveState();
        long savedBytes = saved.Values.Sum(t => t.ByteLength) - 8;
        foreach (var t in saved.Values) t.Dispose();
        Assert.Equal(savedBytes, opt.StateBytes);
        Assert.True(eightBit ? opt.StateBytes < 4L * 2 * sizes.Sum() : opt.StateBytes == 8L * sizes.Sum());
    }
}
