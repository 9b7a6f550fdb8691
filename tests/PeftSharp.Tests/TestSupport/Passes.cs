using PeftSharp.Inference;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;

namespace PeftSharp.Tests.TestSupport;

/// <summary>Passes and sessions on the shared test context: over a bare model (no adapter), or over a PeftModel
/// with its active adapter routed to every row.</summary>
internal static class Passes
{
    public static ModelPass Model(CausalLM m, int batch, int seq, bool recompute) => new(m, TestCompute.Cpu, batch, seq, recompute);
    public static ModelPass Model(PeftModel pm, int batch, int seq, bool recompute) => new(pm.Model, TestCompute.Cpu, batch, seq, recompute, pm.Route(pm.Active));

    public static InferenceSession Session(CausalLM m, int maxLength) => new(m, TestCompute.Cpu, maxLength);
    public static InferenceSession Session(PeftModel pm, int maxLength) => new(pm.Model, TestCompute.Cpu, maxLength, pm.Route(pm.Active));

    public static float[] Logits(CausalLM m, int[] ids) => AdapterMerge.Logits(m, TestCompute.Cpu, AdapterRouting.None, ids);
    public static float[] Logits(PeftModel pm, int[] ids) => AdapterMerge.Logits(pm.Model, TestCompute.Cpu, pm.Route(pm.Active), ids);

    public static ScoreResult Score(CausalLM m, int[] ids, int chunk = 64) => Scorer.Score(m, TestCompute.Cpu, AdapterRouting.None, ids, chunk);
    public static ScoreResult Score(PeftModel pm, int[] ids, int chunk = 64) => Scorer.Score(pm.Model, TestCompute.Cpu, pm.Route(pm.Active), ids, chunk);

    public static IEnumerable<int> Generate(CausalLM m, IReadOnlyList<int> prompt, int maxNewTokens, SamplingOptions options, IReadOnlyCollection<int> stopIds) =>
        Generator.Generate(m, TestCompute.Cpu, AdapterRouting.None, prompt, maxNewTokens, options, stopIds);
    public static IEnumerable<int> Generate(PeftModel pm, IReadOnlyList<int> prompt, int maxNewTokens, SamplingOptions options, IReadOnlyCollection<int> stopIds) =>
        Generator.Generate(pm.Model, TestCompute.Cpu, pm.Route(pm.Active), prompt, maxNewTokens, options, stopIds);
}
