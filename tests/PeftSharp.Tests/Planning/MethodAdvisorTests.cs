using PeftSharp.Models;
using PeftSharp.Planning;
using PeftSharp.Tests.IO;

namespace PeftSharp.Tests.Planning;

/// <summary>"Which method when" made quantitative, on the SmolLM2-135M config.</summary>
public class MethodAdvisorTests
{
    static readonly ModelConfig Smol = ModelConfig.Load(IoTestPaths.ModelConfig("smollm2-135m.json"));

    static Advice Advise(string budget, int batch = 4, int seq = 256) =>
        MethodAdvisor.Advise(Smol, ByteSize.Parse(budget), batch, seq, 16, "all-linear", "adamw");

    [Theory]
    [InlineData("24GB", "full", false)]
    [InlineData("1.2GB", "dora", true)]   // DoRA with checkpointing saves one block's n×out at a time
    [InlineData("500MB", "qdora", true)]
    public void PicksTheBestQualityMethodThatFits(string budget, string method, bool checkpointing)
    {
        var a = Advise(budget);
        Assert.Equal((method, checkpointing, 4, 256), (a.Method, a.Checkpointing, a.AdvisedBatch, a.AdvisedSeq));
        Assert.True(a.Chosen!.AtRequested.TotalBytes <= a.BudgetBytes);
        // every better method (or the same without checkpointing) does not fit at the requested shape
        int rank = Array.IndexOf(MethodAdvisor.QualityOrder, method);
        foreach (var f in a.Fits)
            if (Array.IndexOf(MethodAdvisor.QualityOrder, f.Method) < rank || (f.Method == method && !f.Checkpointing && checkpointing))
                Assert.False(f.FitsRequested, $"{f.Method} ckpt={f.Checkpointing} fits but was not chosen");
        Assert.Contains(ByteSize.Format(a.Chosen.AtRequested.TotalBytes), a.Reason);
    }

    [Fact]
    public void FitsAreConsistentWithTheEstimates()
    {
        var a = Advise("1.2GB");
        foreach (var f in a.Fits)
        {
            Assert.Equal(f.AtRequested.TotalBytes <= a.BudgetBytes, f.FitsRequested);
            if (f.LargestFitting is { } l) Assert.True(l.TotalBytes <= a.BudgetBytes);
            if (f.MaxBatchAtRequestedSeq > 0)
            {
                var e = MemoryEstimator.Estimate(Smol, f.Method, f.MaxBatchAtRequestedSeq, 256, 16, "all-linear", f.Checkpointing, "adamw");
                Assert.True(e.TotalBytes <= a.BudgetBytes);
            }
        }
    }

    [Fact]
    public void ShrinksTheShapeWhenNothingFitsAtTheRequestedOne()
    {
        var a = Advise("2GB", batch: 64, seq: 8192);
        Assert.All(a.Fits, f => Assert.False(f.FitsRequested));
        Assert.NotNull(a.Method);
        Assert.True((long)a.AdvisedBatch * a.AdvisedSeq < 64L * 8192);
        var e = MemoryEstimator.Estimate(Smol, a.Method!, a.AdvisedBatch, a.AdvisedSeq, 16, "all-linear", a.Checkpointing, "adamw");
        Assert.True(e.TotalBytes <= a.BudgetBytes);
        Assert.Contains("gradient accumulation", a.Reason);
    }

    [Fact]
    public void SaysSoWhenNothingFits()
    {
        var a = Advise("100MB");
        Assert.Null(a.Method);
        Assert.Contains("no method fits", a.Reason);
        Assert.Contains("adamw8bit", a.Reason);
    }
}
