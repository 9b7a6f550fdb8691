using PeftSharp.Peft;
using PeftSharp.Quantization;

namespace PeftSharp.Training;

/// <summary>Everything a run needs. Names follow transformers' TrainingArguments / PEFT's LoraConfig where they exist.</summary>
public sealed record TrainingOptions : TrainerOptions
{
    /// <summary>Base model folder: config.json, *.safetensors, tokenizer.json (Hugging Face layout).</summary>
    public required string ModelDir { get; init; }
    /// <summary>Training data: a JSONL file or a JSON array of records (see <see cref="DataFormat"/>).</summary>
    public required string DataFile { get; init; }
    /// <summary>Run folder: checkpoints/, metrics.jsonl, summary.json and the final adapter/ (model/ for full).</summary>
    public required string OutputDir { get; init; }
    /// <summary>Separate evaluation data (same formats); when set, <see cref="EvalFraction"/> is ignored.</summary>
    public string? EvalFile { get; init; }
    /// <summary>Fraction of <see cref="DataFile"/> held out for evaluation, in [0, 1) (default 0.1; 0 = none).</summary>
    public double EvalFraction { get; init; } = 0.1;
    /// <summary>auto (default: detected from the first valid record), text, prompt-completion, messages (or chat)
    /// or alpaca.</summary>
    public string DataFormat { get; init; } = "auto";
    /// <summary>Skip and count malformed records instead of stopping at the first (default false).</summary>
    public bool SkipBadLines { get; init; }

    /// <summary>lora, dora, qlora, qdora (LoRA/DoRA over a 4-bit base) or full.</summary>
    public string Method { get; init; } = "lora";
    /// <summary>Adapter settings for the LoRA/DoRA methods (default r 16, lora_alpha 32, all linear layers; the
    /// dora methods set use_dora).</summary>
    public LoraConfig Lora { get; init; } = new() { R = 16, LoraAlpha = 32, TargetModulesRegex = "all-linear" };

    /// <summary>4-bit type for qlora/qdora (transformers' bnb_4bit_quant_type): nf4 (QLoRA) or fp4.</summary>
    public string BnbQuantType { get; init; } = "nf4";
    /// <summary>Double quantization of the absmax values (bnb_4bit_use_double_quant).</summary>
    public bool BnbDoubleQuant { get; init; } = true;

    /// <summary>True for the methods that train over a 4-bit base.</summary>
    public bool IsQuantized => TrainingMethod.Parse(Method).QuantizedBase;
    /// <summary>The 4-bit format of the base for qlora/qdora: <see cref="BnbQuantType"/>, <see cref="BnbDoubleQuant"/>,
    /// blocks of 64. Throws <see cref="PeftException"/> for an unknown quant type.</summary>
    public QuantizeOptions Quantize => QuantizeOptions.Parse(BnbQuantType, BnbDoubleQuant, 64, "bnb_4bit_quant_type");

    /// <summary>Write a checkpoint every this many steps, and after the last (default 50; 0 = only after the last).</summary>
    public int SaveSteps { get; init; } = 50;
    /// <summary>Checkpoints kept: older ones are deleted (default 2; 0 or less keeps all).</summary>
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
