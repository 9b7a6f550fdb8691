namespace PeftSharp.Training;

/// <summary>
/// The optimization loop's settings (names follow transformers' TrainingArguments). The folder-based run
/// (<see cref="TrainingOptions"/>) adds paths, the method and the data files to these.
/// </summary>
public record TrainerOptions
{
    /// <summary>Peak learning rate (default 2e-4).</summary>
    public double LearningRate { get; init; } = 2e-4;
    /// <summary>constant, linear or cosine (default), after <see cref="WarmupSteps"/> of linear warm-up.</summary>
    public string LrScheduler { get; init; } = "cosine";
    /// <summary>Linear warm-up steps (default 0).</summary>
    public int WarmupSteps { get; init; }
    /// <summary>Decoupled weight decay (default 0).</summary>
    public double WeightDecay { get; init; }
    /// <summary>Adam β1 (default 0.9).</summary>
    public double AdamBeta1 { get; init; } = 0.9;
    /// <summary>Adam β2 (default 0.999).</summary>
    public double AdamBeta2 { get; init; } = 0.999;
    /// <summary>Adam ε (default 1e-8).</summary>
    public double AdamEpsilon { get; init; } = 1e-8;
    /// <summary>adamw (32-bit states, default) or adamw8bit (bitsandbytes blockwise states).</summary>
    public string Optimizer { get; init; } = "adamw";
    /// <summary>Global gradient-norm clipping threshold (default 1; 0 disables).</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Optimizer steps (default 100).</summary>
    public int MaxSteps { get; init; } = 100;
    /// <summary>Sequences per micro-batch (default 4).</summary>
    public int BatchSize { get; init; } = 4;
    /// <summary>Micro-batches per optimizer step (default 1).</summary>
    public int GradientAccumulationSteps { get; init; } = 1;
    /// <summary>Tokens per sequence (default 256).</summary>
    public int MaxLength { get; init; } = 256;
    /// <summary>Pack several short examples into one sequence, attention kept apart (default true).</summary>
    public bool Packing { get; init; } = true;
    /// <summary>Recompute block activations in backward to save memory (default false).</summary>
    public bool GradientCheckpointing { get; init; }

    /// <summary>Evaluate every this many steps and at the end (default 50; 0: only at the start and the end).</summary>
    public int EvalSteps { get; init; } = 50;
    /// <summary>Report a step's metrics every this many steps (default 1).</summary>
    public int LoggingSteps { get; init; } = 1;
    /// <summary>Train on every token, not only completions and assistant turns (default false).</summary>
    public bool TrainOnPrompt { get; init; }
    /// <summary>Seed of data order, dropout masks and adapter initialization (default 42).</summary>
    public int Seed { get; init; } = 42;

    /// <summary>On a device, copy the optimizer state back to the host after every step (so checkpoints hold it);
    /// benchmarks turn it off. The trained values are always copied back.</summary>
    internal bool DeviceSyncsOptimizerState { get; init; } = true;

    /// <summary>Throws a <see cref="PeftException"/> naming the first setting out of range.</summary>
    public virtual void Validate()
    {
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw new PeftException($"learning_rate must be a finite number > 0, got {LearningRate}");
        if (MaxSteps <= 0) throw new PeftException($"max_steps must be > 0, got {MaxSteps}");
        if (BatchSize <= 0) throw new PeftException($"per_device_train_batch_size must be > 0, got {BatchSize}");
        if (GradientAccumulationSteps <= 0) throw new PeftException($"gradient_accumulation_steps must be > 0, got {GradientAccumulationSteps}");
        if (MaxLength < 2) throw new PeftException($"max_length must be ≥ 2, got {MaxLength}");
        if (Optimizer is not ("adamw" or "adamw8bit")) throw new PeftException($"optim \"{Optimizer}\" is not supported (adamw, adamw8bit)");
        _ = new LrSchedule(LrScheduler, LearningRate, WarmupSteps, MaxSteps).At(0);
    }
}
