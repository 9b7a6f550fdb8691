using PeftSharp.Models;

namespace PeftSharp.Planning;

/// <summary>
/// What `modules_to_save` adds to training, as PEFT wraps modules: one trainable float32 copy (V×C) per named
/// embedding module. On a model with tied embeddings each named module gets its own copy and the tie is broken (the
/// other module keeps the base weight), unless ensure_weight_tying keeps one shared copy for both.
/// </summary>
internal sealed record ModulesToSaveCount(IReadOnlyList<string> Modules, int Copies, long TrainableParameters, bool TiedModel, bool TieKept)
{
    public static readonly string[] Supported = ["embed_tokens", "lm_head"];

    public static ModulesToSaveCount Of(ModelConfig c, IReadOnlyList<string> modules, bool ensureWeightTying, string option = "--modules-to-save")
    {
        foreach (var m in modules)
            if (!Supported.Contains(m))
                throw new PeftException($"{option}: \"{m}\" is not supported (expected {string.Join(" or ", Supported)})");
        var distinct = modules.Distinct().ToList();
        bool tieKept = c.TieWordEmbeddings && ensureWeightTying && distinct.Count > 0;
        int copies = tieKept ? 1 : distinct.Count;
        return new ModulesToSaveCount(distinct, copies, copies * (long)c.VocabSize * c.HiddenSize, c.TieWordEmbeddings, tieKept);
    }

    /// <summary>One line for the calc report.</summary>
    public string Describe()
    {
        string tie = !TiedModel ? "" : TieKept
            ? "; ensure_weight_tying: one copy serves embed_tokens and lm_head (the tie is kept)"
            : Modules.Count == 2
                ? "; tied model: two separate copies, the tie is broken"
                : $"; tied model: the tie is broken ({(Modules[0] == "lm_head" ? "embed_tokens" : "lm_head")} keeps the base weight)";
        return $"modules_to_save {string.Join(",", Modules)}: {Copies} full copy(ies), {TrainableParameters:N0} trainable parameters beyond the adapter{tie}";
    }
}
