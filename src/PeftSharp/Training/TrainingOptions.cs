using PeftSharp.Peft;
using PeftSharp.Quantization;

namespace PeftSharp.Training;

/// <summary>Everything a run needs. Names follow transformers' TrainingArguments / PEFT's LoraConfig where they exist.</summary>
public sealed record TrainingOptions
{
    public required string ModelDir { get; init; }
    public required string DataFile { get; init; }
    public required string OutputDir { get; init; }
    public string? EvalFile { get; init; }
    public double EvalFraction { get; init; } = 0.1;
    public string DataFormat { get; init; } = "auto";
    public bool TrainOnPrompt { get; init; }
    public bool SkipBadLines { get; init; }

    /// <summary>lora, dora, qlora, qdora (LoRA/DoRA over a 4-bit base) or full.</summary>
    public string Method { get; init; } = "lora";
    public LoraConfig Lora { get; init; } = new() { R = 16, LoraAlpha = 32, TargetModulesRegex = "all-linear" };

    /// <summary>4-bit type for qlora/qdora (transformers' bnb_4bit_quant_type): nf4 (QLoRA) or fp4.</summary>
    public string BnbQuantType { get; init; } = "nf4";
    /// <summary>Double quantization of the absmax values (bnb_4bit_use_double_quant).</summary>
    public bool BnbDoubleQuant { get; init; } = true;

    /// <summary>True for the methods that train over a 4-bit base.</summary>
    public bool IsQuantized => Method is "qlora" or "qdora";
    public QuantizeOptions Quantize => QuantizeOptions.Parse(BnbQuantType, BnbDoubleQuant, 64, "bnb_4bit_quant_type");

    public double LearningRate { get; init; } = 2e-4;
    public string LrScheduler { get; init; } = "cosine";
    public int WarmupSteps { get; init; }
    public double WeightDecay { get; init; }
    public double AdamBeta1 { get; init; } = 0.9;
    public double AdamBeta2 { get; init; } = 0.999;
    public double AdamEpsilon { get; init; } = 1e-8;
    /// <summary>adamw (32-bit) or adamw8bit (bitsandbytes blockwise states).</summary>
    public string Optimizer { get; init; } = "adamw";
    public double MaxGradNorm { get; init; } = 1.0;

    public int MaxSteps { get; init; } = 100;
    public int BatchSize { get; init; } = 4;
    public int GradientAccumulationSteps { get; init; } = 1;
    public int MaxLength { get; init; } = 256;
    public bool Packing { get; init; } = true;
    public bool GradientCheckpointing { get; init; }

    public int EvalSteps { get; init; } = 50;
    public int SaveSteps { get; init; } = 50;
    public int SaveTotalLimit { get; init; } = 2;
    public int LoggingSteps { get; init; } = 1;
    public int Seed { get; init; } = 42;
    /// <summary>Resume from this checkpoint folder, or "latest" (the newest under OutputDir/checkpoints).</summary>
    public string? ResumeFrom { get; init; }
    /// <summary>Save the adapter in BF16 instead of F32.</summary>
    public bool SaveBf16 { get; init; }

    public void Validate()
    {
        if (Method is not ("lora" or "dora" or "qlora" or "qdora" or "full"))
            throw new PeftException($"method \"{Method}\" is not supported (expected lora, dora, qlora, qdora or full)");
        if (IsQuantized) _ = Quantize;
        if (LearningRate <= 0) throw new PeftException($"learning_rate must be > 0, got {LearningRate}");
        if (MaxSteps <= 0) throw new PeftException($"max_steps must be > 0, got {MaxSteps}");
        if (BatchSize <= 0) throw new PeftException($"per_device_train_batch_size must be > 0, got {BatchSize}");
        if (GradientAccumulationSteps <= 0) throw new PeftException($"gradient_accumulation_steps must be > 0, got {GradientAccumulationSteps}");
        if (MaxLength < 2) throw new PeftException($"max_length must be ≥ 2, got {MaxLength}");
        if (EvalFraction is < 0 or >= 1) throw new PeftException($"eval_fraction must be in [0, 1), got {EvalFraction}");
        if (Optimizer is not ("adamw" or "adamw8bit")) throw new PeftException($"optim \"{Optimizer}\" is not supported (adamw, adamw8bit)");
        _ = new LrSchedule(LrScheduler, LearningRate, WarmupSteps, MaxSteps).At(0);
    }
}
