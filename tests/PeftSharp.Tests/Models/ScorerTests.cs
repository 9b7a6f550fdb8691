using PeftSharp.Inference;
using PeftSharp.Models;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Models;

public class ScorerTests
{
    [Fact]
    public void Score_AgreesWithTrainingLoss_AcrossChunkBoundaries()
    {
        var c = TinyModels.Config("llama");
        using var m = TinyModels.Build(c, TinyModels.Weights(c, 5));
        var ids = TinyModels.RandomIds(new Random(6), 19, c.VocabSize);
        var r = Passes.Score(m, ids, chunk: 4);
        Assert.Null(r.LogProbs[0]);
        Assert.All(r.LogProbs.Skip(1), lp => Assert.True(lp < 0));
        using var pass = Passes.Model(m, 1, ids.Length, false);
        var (loss, count) = pass.Loss(ids, Enumerable.Range(0, ids.Length).ToArray(), [], ids.Skip(1).Append(-100).ToArray());
        Assert.Equal(ids.Length - 1, count);
        Assert.Equal(-loss, r.Total, 1e-3);
        Assert.Equal(Math.Exp(loss / count), r.Perplexity, 1e-3);
        Assert.Contains("\"logprobs\":[null,", r.ToJson());
    }
}
