using System.Text.Json.Nodes;

namespace PeftSharp.Peft;

/// <summary>
/// PEFT's LoftQConfig, the `loftq_config` of an adapter whose init_lora_weights is "loftq": LoftQ (Li et al. 2023)
/// alternately quantizes W − s·B·A to 4 bits and refits B, A as the top-r SVD of W − Q, so that Q + s·B·A starts closer
/// to W than the plain quantized Q does.
/// </summary>
public sealed record LoftQConfig
{
    /// <summary>`loftq_bits`: bits of the quantized base (PEFT default 4). Only 4 (NF4) is supported here; PEFT's 8
    /// is an LLM.int8 base, which this project does not train over.</summary>
    public int LoftqBits { get; init; } = 4;

    /// <summary>`loftq_iter`: alternating quantize/SVD steps, ≥ 1 (PEFT default 1).</summary>
    public int LoftqIter { get; init; } = 1;

    /// <summary>Throws <see cref="PeftException"/> naming the field outside its range.</summary>
    /// <param name="source">Names the config in the error message.</param>
    public void Validate(string source)
    {
        if (LoftqBits != 4)
            throw new PeftException($"{source}: loftq_config.loftq_bits {LoftqBits} is not supported (expected 4: an NF4 base; " +
                "PEFT's 8 is an LLM.int8 base, which this project does not train over)");
        if (LoftqIter < 1) throw new PeftException($"{source}: loftq_config.loftq_iter must be ≥ 1, got {LoftqIter}");
    }

    /// <summary>
    /// The config a LoftQ adapter is saved with, as PEFT's own LoftQ example saves it (quantize_save_load.py sets
    /// init_lora_weights = True before save_pretrained): the factors are already fitted and the base already holds Q,
    /// and PEFT's from_pretrained would run loftq_init again on a config that says "loftq" (it needs a dense base and
    /// fails on a 4-bit one). loftq_config becomes {} as PEFT's LoraConfig resets it for any other init; what LoftQ did
    /// is kept in the run's loftq.json.
    /// </summary>
    internal static LoraConfig SavedForm(LoraConfig c) =>
        c.InitLoraWeights == "loftq" ? c with { InitLoraWeights = "true", LoftqConfig = null } : c;

    /// <summary>The JSON object PEFT writes (vars(LoftQConfig)): {"loftq_bits": 4, "loftq_iter": N}.</summary>
    internal JsonObject ToJson() => new() { ["loftq_bits"] = LoftqBits, ["loftq_iter"] = LoftqIter };

    /// <summary>Reads a `loftq_config` object; missing keys take PEFT's defaults, other types are errors naming the key.</summary>
    internal static LoftQConfig Parse(JsonObject o, string source)
    {
        int Whole(string key, int fallback)
        {
            var n = o[key];
            if (n == null) return fallback;
            if (n is JsonValue v && v.TryGetValue<double>(out var d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue) return (int)d;
            throw new PeftException($"{source}: \"loftq_config.{key}\" must be a whole number");
        }
        return new LoftQConfig { LoftqBits = Whole("loftq_bits", 4), LoftqIter = Whole("loftq_iter", 1) };
    }
}
