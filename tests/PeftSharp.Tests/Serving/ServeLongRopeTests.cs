using PeftSharp.Inference;
using PeftSharp.Kernels;
using PeftSharp.Peft;
using PeftSharp.Server.Engine;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Serving;

/// <summary>
/// The batching engine on a LongRoPE model (original length 8) with a sliding window: one sequence crosses the
/// original length while another stays within it, so steps alternate between the factor sets and the crossing one
/// is recomputed. Each must produce what a single-sequence generation produces (itself checked against full forwards
/// in LongRopeTests).
/// </summary>
public class ServeLongRopeTests
{
    [Fact]
    public async Task Sequences_on_both_sides_of_the_original_length_match_single_sequence_generation()
    {
        var rope = RopeScaling.LongRope([1.0, 1.5, 2.25, 3.0], [1.25, 4.0, 9.5, 20.0], 8, 16);
        var c = TinyModels.Config("phi3", kvHeads: 2) with { RopeScaling = rope, SlidingWindow = 3, EosTokenIds = [] };
        var w = TinyModels.Weights(c, 21);
        using var reference = TinyModels.Build(c, w);
        using var served = new PeftModel(TinyModels.Build(c, w), TestCompute.Cpu);
        using var engine = new ServeEngine(served, TestCompute.Cpu, new EngineOptions { MaxBatch = 4, MaxQueue = 8 });

        int[] crossing = [3, 4, 5, 6, 7], staying = [9, 10, 11];
        var a = engine.Submit(new GenerationRequest(crossing, null, 9, SamplingOptions.Greedy));
        var b = engine.Submit(new GenerationRequest(staying, null, 4, SamplingOptions.Greedy));
        async Task<int[]> Read(GenerationStream s)
        {
            var ids = new List<int>();
            await foreach (var t in s.ReadAllAsync()) ids.Add(t.Id);
            return ids.ToArray();
        }
        var (gotA, gotB) = (await Read(a), await Read(b));
        Assert.Equal(Passes.Generate(reference, crossing, 9, SamplingOptions.Greedy, []).ToArray(), gotA);
        Assert.Equal(Passes.Generate(reference, staying, 4, SamplingOptions.Greedy, []).ToArray(), gotB);
        foreach (var t in w.Values) t.Dispose();
    }
}
