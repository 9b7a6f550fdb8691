using PeftSharp.Models;

namespace PeftSharp.Planning;

/// <summary>One projection of a decoder layer, weight shape [Out, In], as in HF's nn.Linear.</summary>
internal sealed record ModuleShape(string Name, int Out, int In)
{
    public long WeightParameters => (long)Out * In;
    /// <summary>A (r, in) + B (out, r).</summary>
    public long LoraParameters(int rank) => (long)rank * (In + Out);
    /// <summary>DoRA adds the magnitude vector m (out).</summary>
    public long DoraExtra => Out;
}

/// <summary>Exact parameter counts of a Llama-family model from its config alone, as <see cref="CausalLM"/> builds it.</summary>
internal static class ParameterCounter
{
    /// <summary>The seven projections of a decoder layer (PEFT's "all-linear" for these architectures; lm_head excluded).</summary>
    public static readonly string[] AllLinear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
    public static readonly string[] AttentionQv = ["q_proj", "v_proj"];
    /// <summary>phi3's four linear modules (PEFT's "all-linear" there: every nn.Linear but lm_head).</summary>
    public static readonly string[] FusedAllLinear = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"];

    /// <summary>The linear module names of the config's layers, in HF order.</summary>
    public static string[] AllLinearFor(ModelConfig c) => c.FusedProjections ? FusedAllLinear : AllLinear;

    /// <summary>Projection shapes of one layer: q (Hq·D, C), k/v (Hkv·D, C), o (C, Hq·D), gate/up (F, C), down (C, F).</summary>
    public static IReadOnlyList<ModuleShape> Projections(ModelConfig c)
    {
        int C = c.HiddenSize, F = c.IntermediateSize, qd = c.NumHeads * c.HeadDim, kvd = c.NumKvHeads * c.HeadDim;
        if (c.FusedProjections)
            return [new("qkv_proj", qd + 2 * kvd, C), new("o_proj", C, qd), new("gate_up_proj", 2 * F, C), new("down_proj", C, F)];
        return
        [
            new("q_proj", qd, C), new("k_proj", kvd, C), new("v_proj", kvd, C), new("o_proj", C, qd),
            new("gate_proj", F, C), new("up_proj", F, C), new("down_proj", C, F),
        ];
    }

    /// <summary>Where a model's parameters are.</summary>
    public sealed record Breakdown(long Embedding, long LmHead, long Projections, long Norms, long Biases)
    {
        public long Total => Embedding + LmHead + Projections + Norms + Biases;
    }

    public static Breakdown Count(ModelConfig c)
    {
        long C = c.HiddenSize, F = c.IntermediateSize, D = c.HeadDim, L = c.NumLayers;
        long qd = c.NumHeads * D, kvd = c.NumKvHeads * D;
        long embed = (long)c.VocabSize * C;
        long proj = L * Projections(c).Sum(p => p.WeightParameters);
        long norms = L * ((c.IsGemma ? 4 : 2) * C + (c.QkNorm ? 2 * D : 0)) + C;   // gemma: + pre/post feed-forward norms
        long biasPerLayer = (c.QkvBias ? qd + 2 * kvd : 0) + (c.OutputBias ? C : 0) + (c.MlpBias ? 2 * F + C : 0);
        return new Breakdown(embed, c.TieWordEmbeddings ? 0 : embed, proj, norms, L * biasPerLayer);
    }

    public static long TotalParameters(ModelConfig c) => Count(c).Total;

    /// <summary>
    /// "all-linear" → all seven projections; otherwise a comma list of projection names ("q_proj,v_proj").
    /// Names outside the seven (lm_head, embed_tokens, typos) are rejected with the option named.
    /// </summary>
    public static string[] ParseTargets(string targets, string option = "--targets") => ParseTargets(targets, AnyArchitecture, option);

    /// <summary>Module names of every supported layout (for checking a target list before the config is known).</summary>
    static readonly string[] AnyArchitecture = [.. AllLinear, "qkv_proj", "gate_up_proj"];

    /// <summary>As <see cref="ParseTargets(string, string)"/> for the config's own module names (phi3: the fused four).</summary>
    public static string[] ParseTargets(string targets, ModelConfig c, string option = "--targets") => ParseTargets(targets, AllLinearFor(c), option);

    static string[] ParseTargets(string targets, string[] AllLinear, string option)
    {
        var t = (targets ?? "").Trim();
        if (t.Equals("all-linear", StringComparison.OrdinalIgnoreCase)) return AllLinear;
        var names = t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0) throw new PeftException($"{option}: no target modules given (expected all-linear or a list like q_proj,v_proj)");
        foreach (var n in names)
            if (!AllLinear.Contains(n))
                throw new PeftException($"{option}: \"{n}\" is not a projection of this architecture (expected all-linear or names from {string.Join(",", AllLinear)})");
        return AllLinear.Where(names.Contains).ToArray();
    }

    /// <summary>Trainable adapter parameters per layer-module over all layers (rank r on every target).</summary>
    public static IReadOnlyList<(ModuleShape Module, long Lora, long DoraExtra)> PerModule(ModelConfig c, IEnumerable<string> targets, int rank)
    {
        var set = targets.ToHashSet();
        return Projections(c).Where(p => set.Contains(p.Name))
            .Select(p => (p, c.NumLayers * p.LoraParameters(rank), (long)c.NumLayers * p.DoraExtra)).ToList();
    }

    /// <summary>Total LoRA (or DoRA) trainable parameters for the targets at rank r.</summary>
    public static long AdapterParameters(ModelConfig c, IEnumerable<string> targets, int rank, bool dora) =>
        PerModule(c, targets, rank).Sum(m => m.Lora + (dora ? m.DoraExtra : 0));

    /// <summary>Element counts of every trainable tensor (for optimizers whose state depends on tensor size).</summary>
    public static IEnumerable<long> AdapterTensorSizes(ModelConfig c, IEnumerable<string> targets, int rank, bool dora)
    {
        var set = targets.ToHashSet();
        for (int l = 0; l < c.NumLayers; l++)
            foreach (var p in Projections(c).Where(p => set.Contains(p.Name)))
            {
                yield return (long)rank * p.In;
                yield return (long)p.Out * rank;
                if (dora) yield return p.Out;
            }
    }

    /// <summary>Element counts of every weight tensor of the model (full fine-tuning trains each one).</summary>
    public static IEnumerable<long> WeightTensorSizes(ModelConfig c)
    {
        long C = c.HiddenSize, D = c.HeadDim, F = c.IntermediateSize;
        long qd = c.NumHeads * D, kvd = c.NumKvHeads * D;
        yield return (long)c.VocabSize * C;
        for (int l = 0; l < c.NumLayers; l++)
        {
            yield return C; yield return C;
            if (c.IsGemma) { yield return C; yield return C; }
            if (c.QkNorm) { yield return D; yield return D; }
            foreach (var p in Projections(c)) yield return p.WeightParameters;
            if (c.QkvBias) { yield return qd; yield return kvd; yield return kvd; }
            if (c.OutputBias) yield return C;
            if (c.MlpBias) { yield return F; yield return F; yield return C; }
        }
        yield return C;
        if (!c.TieWordEmbeddings) yield return (long)c.VocabSize * C;
    }
}
