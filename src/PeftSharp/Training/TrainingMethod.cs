using PeftSharp.Peft;
using PeftSharp.Quantization;

namespace PeftSharp.Training;

/// <summary>
/// What a run trains: an adapter kind (LoRA, DoRA …) or the whole model (full fine-tuning), over a base that is
/// optionally quantized to 4 bits (QLoRA = LoRA over NF4, QDoRA = DoRA over NF4). The method names of the CLI and of
/// run files ("lora", "dora", "qlora", "qdora", "full") are parsed here and nowhere else.
/// </summary>
public sealed record TrainingMethod
{
    TrainingMethod(AdapterKind? adapter, bool quantizedBase)
    {
        Adapter = adapter;
        QuantizedBase = quantizedBase;
    }

    /// <summary>The adapter kind, or null for full fine-tuning.</summary>
    public AdapterKind? Adapter { get; }

    /// <summary>True when the frozen base is 4-bit (QLoRA, QDoRA).</summary>
    public bool QuantizedBase { get; }

    /// <summary>True for full fine-tuning.</summary>
    public bool IsFull => Adapter == null;

    /// <summary>LoRA over a 16-bit base.</summary>
    public static TrainingMethod Lora { get; } = new(AdapterKind.Lora, false);
    /// <summary>DoRA over a 16-bit base.</summary>
    public static TrainingMethod Dora { get; } = new(AdapterKind.Dora, false);
    /// <summary>LoRA over a 4-bit base.</summary>
    public static TrainingMethod QLora { get; } = new(AdapterKind.Lora, true);
    /// <summary>DoRA over a 4-bit base.</summary>
    public static TrainingMethod QDora { get; } = new(AdapterKind.Dora, true);
    /// <summary>Every weight trained in float32.</summary>
    public static TrainingMethod Full { get; } = new(null, false);

    /// <summary>Every method, in the order the comparison and the calculator list them.</summary>
    public static IReadOnlyList<TrainingMethod> All { get; } = [Full, Lora, Dora, QLora, QDora];

    /// <summary>"lora", "dora", "qlora", "qdora" or "full".</summary>
    public string Name => IsFull ? "full" : (QuantizedBase ? "q" : "") + Adapter!.Name;

    /// <summary>The method named <paramref name="name"/>; an error that lists the names otherwise.</summary>
    public static TrainingMethod Parse(string name, string what = "method") =>
        All.FirstOrDefault(m => string.Equals(m.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new PeftException($"{what} \"{name}\" is not supported (expected lora, dora, qlora, qdora or full)");

    /// <summary>The same adapter kind over a 4-bit base (or not).</summary>
    public TrainingMethod WithQuantizedBase(bool quantized) =>
        IsFull ? (quantized ? throw new PeftException("full fine-tuning needs a dense base") : this)
            : All.First(m => m.Adapter == Adapter && m.QuantizedBase == quantized);

    /// <inheritdoc/>
    public override string ToString() => Name;
}
