using PeftSharp.Inference;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Architecture;

/// <summary>
/// Per-pass state: one loaded model serves concurrent scoring, generation and training passes with different adapters,
/// each giving exactly what it gives alone; and a batch whose rows use different adapters equals each row alone.
/// </summary>
public class ConcurrentPassesTests
{
    static readonly int[] Ids = [1, 7, 3, 9, 4, 12, 5, 2, 8, 6, 11, 10];

    /// <summary>A tiny model with three adapters: LoRA "a", DoRA "b" (dropout, for training), LoRA "c" of another rank.</summary>
    static PeftModel Model()
    {
        var c = TinyModels.Config("llama", layers: 2);
        var pm = new PeftModel(TinyModels.Build(c, TinyModels.Weights(c, 3)), TestCompute.Cpu);
        pm.AddAdapter("a", new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear" }, 1);
        pm.AddAdapter("b", new LoraConfig { R = 2, LoraAlpha = 4, TargetModulesRegex = "all-linear", UseDora = true, LoraDropout = 0.2 }, 2);
        pm.AddAdapter("c", new LoraConfig { R = 8, LoraAlpha = 8, TargetModules = ["q_proj", "v_proj"] }, 3);
        var rng = new Random(4);
        foreach (var m in pm.LoraModules)
            foreach (var ad in m.Adapters.Values)
                foreach (var p in ad.Parameters())
                {
                    var v = p.Value.Floats;
                    for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * 0.2f;   // B ≠ 0: every adapter matters
                }
        pm.SetActive(null);
        return pm;
    }

    sealed record Results(double?[] ScoreA, int[] GeneratedC, float[] GradsB, double LossB, double?[] ScoreBase);

    static double?[] Score(PeftModel pm, string? adapter) =>
        Scorer.Score(pm.Model, TestCompute.Cpu, pm.Route(adapter), Ids, chunk: 5).LogProbs;

    static int[] Generate(PeftModel pm, string adapter) =>
        Generator.Generate(pm.Model, TestCompute.Cpu, pm.Route(adapter), Ids[..4], 8, SamplingOptions.Greedy, []).ToArray();

    /// <summary>A training forward + backward of DoRA "b" with dropout; returns its loss and a copy of its gradients.</summary>
    static (double Loss, float[] Grads) TrainB(PeftModel pm)
    {
        var parameters = pm.LoraModules.SelectMany(m => m.AdapterParameters("b")).ToList();
        foreach (var p in parameters) p.ZeroGrad();
        using var pass = new ModelPass(pm.Model, TestCompute.Cpu, 2, 6, recompute: true, pm.Route("b")) ;
        pass.Context.DropoutSeed = 11;
        pass.Context.DropoutStep = 3;
        var targets = Ids.Select((_, i) => i % 6 == 5 ? -100 : Ids[i + 1]).ToArray();
        var positions = Ids.Select((_, i) => i % 6).ToArray();
        var (sum, count) = pass.ForwardBackward(Ids, positions, [], targets, 1f / 10);
        return (sum / count, parameters.SelectMany(p => p.Grad.Floats.ToArray()).ToArray());
    }

    [Fact]
    public async Task ConcurrentPassesWithDifferentAdapters_MatchRunningThemOneAfterAnother()
    {
        using var pm = Model();
        var (lossB, gradsB) = TrainB(pm);
        var expected = new Results(Score(pm, "a"), Generate(pm, "c"), gradsB, lossB, Score(pm, null));
        Assert.NotEqual(expected.ScoreA, expected.ScoreBase);    // the adapters change the outputs: the check can fail

        for (int round = 0; round < 3; round++)
        {
            var scoreA = Task.Run(() => Score(pm, "a"));
            var generated = Task.Run(() => Generate(pm, "c"));
            var training = Task.Run(() => TrainB(pm));
            var scoreBase = Task.Run(() => Score(pm, null));
            var moreA = Task.Run(() => Score(pm, "a"));
            await Task.WhenAll(scoreA, generated, training, scoreBase, moreA);
            Assert.Equal(expected.ScoreA, await scoreA);
            Assert.Equal(expected.ScoreA, await moreA);
            Assert.Equal(expected.GeneratedC, await generated);
            var (loss, grads) = await training;
            Assert.Equal(expected.LossB, loss);
            Assert.Equal(expected.GradsB, grads);
            Assert.Equal(expected.ScoreBase, await scoreBase);
        }
    }

    [Fact]
    public void ABatchWhoseRowsUseDifferentAdapters_EqualsEachRowAlone()
    {
        using var pm = Model();
        const int T = 6;
        string?[] adapters = ["a", "b", null, "c"];
        var ids = Enumerable.Range(0, adapters.Length * T).Select(i => Ids[i % Ids.Length]).ToArray();
        var positions = ids.Select((_, i) => i % T).ToArray();
        var segments = adapters.Select((a, row) => pm.Segment(row * T, T, a)).ToList();
        using var batch = new ModelPass(pm.Model, TestCompute.Cpu, adapters.Length, T, recompute: false, AdapterRouting.Segmented(segments));
        batch.Forward(ids, positions, [], training: false);
        int C = pm.Model.Config.HiddenSize;
        for (int row = 0; row < adapters.Length; row++)
        {
            using var alone = new ModelPass(pm.Model, TestCompute.Cpu, 1, T, recompute: false, pm.Route(adapters[row]));
            alone.Forward(ids.AsSpan(row * T, T), positions.AsSpan(row * T, T), [], training: false);
            var together = batch.FinalHidden.Floats.Slice(row * T * C, T * C).ToArray();
            Numerics.AssertClose(together, alone.FinalHidden.Floats.ToArray().Select(v => (double)v).ToArray(), 1e-6, $"row {row} ({adapters[row] ?? "base"})");
        }
    }

    [Fact]
    public void AnAdapterInUse_CannotBeUnloaded_UntilItsPassesEnd()
    {
        using var pm = Model();
        var use = pm.Use("a");
        var e = Assert.Throws<PeftException>(() => pm.Unload("a"));
        Assert.Contains("in use", e.Message);
        use.Dispose();
        pm.Unload("a");
        Assert.DoesNotContain("a", pm.Configs.Keys);
    }
}
