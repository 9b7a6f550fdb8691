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
    /// <summary>Start afresh in an output folder that holds an earlier run, deleting that run's files (the CLI refuses
    /// such a folder otherwise, unless the run resumes it).</summary>
    public bool Overwrite { get; init; }
    /// <summary>Save the adapter in BF16 instead of F32.</summary>
    public bool SaveBf16 { get; init; }

    /// <summary>The parsed <see cref="Method"/>.</summary>
    public TrainingMethod ParsedMethod => TrainingMethod.Parse(Method);

    /// <inheritdoc/>
    public override void Validate()
    {
        _ = ParsedMethod;
        if (IsQuantized) _ = Quantize;
        // Each check names the YAML key (the flag is the same with dashes). NaN fails every comparison, so ranges
        // are written as "must hold" tests.
        Range("learning_rate", LearningRate, LearningRate > 0 && LearningRate <= 1, "in (0, 1]");
        Range("eval_fraction", EvalFraction, EvalFraction >= 0 && EvalFraction < 1, "in [0, 1)");
        Range("weight_decay", WeightDecay, WeightDecay >= 0 && double.IsFinite(WeightDecay), "a finite number ≥ 0");
        Range("adam_beta1", AdamBeta1, AdamBeta1 >= 0 && AdamBeta1 < 1, "in [0, 1)");
        Range("adam_beta2", AdamBeta2, AdamBeta2 >= 0 && AdamBeta2 < 1, "in [0, 1)");
        Range("adam_epsilon", AdamEpsilon, AdamEpsilon > 0 && double.IsFinite(AdamEpsilon), "a finite number > 0");
        Range("max_grad_norm", MaxGradNorm, MaxGradNorm >= 0 && double.IsFinite(MaxGradNorm), "a finite number ≥ 0 (0 = off)");
        if (MaxSteps <= 0) throw new PeftException($"max_steps must be > 0, got {MaxSteps}");
        if (BatchSize <= 0) throw new PeftException($"per_device_train_batch_size must be > 0, got {BatchSize}");
        if (GradientAccumulationSteps <= 0) throw new PeftException($"gradient_accumulation_steps must be > 0, got {GradientAccumulationSteps}");
        if (MaxLength < 2) throw new PeftException($"max_length must be ≥ 2, got {MaxLength}");
        if (WarmupSteps < 0) throw new PeftException($"warmup_steps must be ≥ 0, got {WarmupSteps}");
        // 0 is meaningful for these two: evaluate / checkpoint only at the end of the run.
        if (EvalSteps < 0) throw new PeftException($"eval_steps must be ≥ 0 (0 = only at the end), got {EvalSteps}");
        if (SaveSteps < 0) throw new PeftException($"save_steps must be ≥ 0 (0 = only at the end), got {SaveSteps}");
        if (SaveTotalLimit <= 0) throw new PeftException($"save_total_limit must be > 0, got {SaveTotalLimit}");
        if (LoggingSteps <= 0) throw new PeftException($"logging_steps must be > 0, got {LoggingSteps}");
        if (Lora.LoftqConfig != null && Lora.InitLoraWeights != "loftq")
            throw new PeftException($"loftq_iter is set but init_lora_weights is \"{Lora.InitLoraWeights}\"; LoftQ needs init_lora_weights loftq");
        if (Method == "full" && Lora.InitLoraWeights == "loftq")
            throw new PeftException("init_lora_weights loftq initializes an adapter; full fine-tuning has none (use qlora or qdora)");
        if (Method != "full")
        {
            Lora.Validate("training options");
            Range("lora_alpha", Lora.LoraAlpha, Lora.LoraAlpha > 0 && double.IsFinite(Lora.LoraAlpha), "a finite number > 0");
        }
        base.Validate();
    }

    static void Range(string key, double value, bool ok, string expected)
    {
        if (!ok) throw new PeftException($"{key} must be {expected}, got {value}");
    }
}
