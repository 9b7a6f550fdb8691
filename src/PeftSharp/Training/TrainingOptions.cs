using PeftSharp.Peft;
using PeftSharp.Quantization;

namespace PeftSharp.Training;

/// <summary>Everything a run needs. Names follow transformers' TrainingArguments / PEFT's LoraConfig where they exist.</summary>
public sealed record TrainingOptions : TrainerOptions
{
    public required string ModelDir { get; init; }
    public required string DataFile { get; init; }
    public required string OutputDir { get; init; }
    public string? EvalFile { get; init; }
    public double EvalFraction { get; init; } = 0.1;
    public string DataFormat { get; init; } = "auto";
    public bool SkipBadLines { get; init; }

    /// <summary>lora, dora, qlora, qdora (LoRA/DoRA over a 4-bit base) or full.</summary>
    public string Method { get; init; } = "lora";
    public LoraConfig Lora { get; init; } = new() { R = 16, LoraAlpha = 32, TargetModulesRegex = "all-linear" };

    /// <summary>4-bit type for qlora/qdora (transformers' bnb_4bit_quant_type): nf4 (QLoRA) or fp4.</summary>
    public string BnbQuantType { get; init; } = "nf4";
    /// <summary>Double quantization of the absmax values (bnb_4bit_use_double_quant).</summary>
    public bool BnbDoubleQuant { get; init; } = true;

    /// <summary>True for the methods that train over a 4-bit base.</summary>
    public bool IsQuantized => TrainingMethod.Parse(Method).QuantizedBase;
    public QuantizeOptions Quantize => QuantizeOptions.Parse(BnbQuantType, BnbDoubleQuant, 64, "bnb_4bit_quant_type");

    public int SaveSteps { get; init; } = 50;
    public int SaveTotalLimit { get; init; } = 2;
    /// <summary>Resume from this checkpoint folder, or "latest" (the newest under OutputDir/checkpoints).</summary>
    public string? ResumeFrom { get; init; }
    /// <summary>Save the adapter in BF16 instead of F32.</summary>
    public bool SaveBf16 { get; init; }

    /// <summary>The parsed <see cref="Method"/>.</summary>
    public TrainingMethod ParsedMethod => TrainingMethod.Parse(Method);

    /// <inheritdoc/>
    public override void Validate()
    {
        _ = ParsedMethod;
        if (IsQuantized) _ = Quantize;
        if (EvalFraction is < 0 or >= 1) throw new PeftException($"eval_fraction must be in [0, 1), got {EvalFraction}");
        base.Validate();
    }
}
