namespace PeftSharp.Peft;

/// <summary>
/// A kind of adapter (LoRA, DoRA …): its name in configs and on the command line, and the variant that implements
/// it. Adding a kind is one variant class and one entry in <see cref="All"/>.
/// </summary>
public sealed class AdapterKind
{
    AdapterKind(string name, IAdapterVariant variant)
    {
        Name = name;
        Variant = variant;
    }

    /// <summary>Low-rank update s·B·A added to the frozen projection.</summary>
    public static AdapterKind Lora { get; } = new("lora", new LoraVariant());

    /// <summary>Weight-decomposed LoRA: magnitude m and direction (W + s·B·A)/‖·‖, as PEFT implements it.</summary>
    public static AdapterKind Dora { get; } = new("dora", new DoraVariant());

    /// <summary>Every registered kind.</summary>
    public static IReadOnlyList<AdapterKind> All { get; } = [Lora, Dora];

    /// <summary>"lora" or "dora".</summary>
    public string Name { get; }

    internal IAdapterVariant Variant { get; }

    /// <summary>The kind named <paramref name="name"/> (case-insensitive), or an error listing the kinds.</summary>
    public static AdapterKind Parse(string name) =>
        All.FirstOrDefault(k => string.Equals(k.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new PeftException($"adapter kind \"{name}\" is not supported (expected {string.Join(" or ", All.Select(k => k.Name))})");

    /// <inheritdoc/>
    public override string ToString() => Name;
}
