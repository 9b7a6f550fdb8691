namespace PeftSharp.Training;

/// <summary>One optimizer step's measurements (also one line of metrics.jsonl).</summary>
/// <param name="Step">1-based number of the step just taken.</param>
/// <param name="TotalSteps">Steps the run will take in all (max_steps).</param>
/// <param name="Loss">Mean cross-entropy per trained token over the step's micro-batches, in nats.</param>
/// <param name="Lr">Learning rate the step used, after warmup and schedule.</param>
/// <param name="GradNorm">Global L2 norm of the trainable gradients, before clipping.</param>
/// <param name="TokensPerSecond">Non-padding tokens of the step divided by its wall time.</param>
/// <param name="StepMs">Wall time of the step, in milliseconds.</param>
/// <param name="RssMb">Resident set of the process after the step, in MiB.</param>
/// <param name="ElapsedSeconds">Wall time since the loop started, in seconds.</param>
/// <param name="Epoch">0-based epoch the data loader is in after the step.</param>
public sealed record StepMetrics(int Step, int TotalSteps, double Loss, double Lr, double GradNorm, double TokensPerSecond,
    double StepMs, double RssMb, double ElapsedSeconds, int Epoch);

/// <summary>Loss of the model on the evaluation set (trained tokens only, no dropout).</summary>
/// <param name="Step">Optimizer steps taken when it was measured (0 = before training).</param>
/// <param name="Loss">Mean cross-entropy per trained token, in nats (NaN when the set is empty).</param>
/// <param name="Perplexity">exp(<paramref name="Loss"/>).</param>
/// <param name="Tokens">Trained tokens the mean is over.</param>
public sealed record EvalMetrics(int Step, double Loss, double Perplexity, int Tokens);

/// <summary>What the run is about to do (printed once at the start).</summary>
/// <param name="Method">Training method, e.g. "lora" or "qdora".</param>
/// <param name="TrainableParameters">Parameters the optimizer updates.</param>
/// <param name="TotalParameters">Base model parameters plus the adapter's (full fine-tuning: the base alone).</param>
/// <param name="TrainExamples">Encoded training examples.</param>
/// <param name="EvalExamples">Encoded evaluation examples (0 = no evaluation).</param>
/// <param name="SkippedRecords">Records of the data file skipped as bad (with skip_bad_lines).</param>
/// <param name="DataFormat">Format of the data file, as detected or given.</param>
/// <param name="StartStep">Steps already taken (non-zero when resuming).</param>
/// <param name="TotalSteps">Steps the run ends at (max_steps).</param>
/// <param name="ResumedFrom">Checkpoint folder resumed from, or null.</param>
/// <param name="Memory">Memory the run holds before the first step.</param>
public sealed record TrainingPlan(string Method, long TrainableParameters, long TotalParameters, int TrainExamples, int EvalExamples,
    int SkippedRecords, string DataFormat, int StartStep, int TotalSteps, string? ResumedFrom, MemoryReport Memory);

/// <summary>Bytes by kind, as the run holds them (frozen weights, trainable parameters, gradients, optimizer state,
/// activations) and the process's peak resident set.</summary>
/// <param name="FrozenWeightBytes">Base weights that are not trained, in their storage format.</param>
/// <param name="TrainableBytes">Trainable parameters.</param>
/// <param name="GradientBytes">Their gradients (the same size).</param>
/// <param name="OptimizerBytes">Optimizer state.</param>
/// <param name="ActivationBytes">Activations saved for the backward passes.</param>
/// <param name="PeakRssMb">Peak resident set of the process so far, in MiB.</param>
public sealed record MemoryReport(long FrozenWeightBytes, long TrainableBytes, long GradientBytes, long OptimizerBytes,
    long ActivationBytes, double PeakRssMb)
{
    /// <summary>Sum of the byte counts above (everything but <see cref="PeakRssMb"/>).</summary>
    public long AccountedBytes => FrozenWeightBytes + TrainableBytes + GradientBytes + OptimizerBytes + ActivationBytes;
}

/// <summary>How a training run ended.</summary>
/// <param name="Steps">Steps taken by this run (excluding those before a resume).</param>
/// <param name="FinalLoss">Training loss of the last step, in nats per token (NaN when no step ran).</param>
/// <param name="FirstEval">Evaluation before the first step, or null (no eval set, or resumed).</param>
/// <param name="FinalEval">Evaluation after the last step, or null (no eval set).</param>
/// <param name="AdapterDir">Folder the result was written to (adapter/, or model/ for full fine-tuning); null
/// from the in-memory <see cref="Trainer"/>, which writes nothing.</param>
/// <param name="WallSeconds">Wall time of the loop, in seconds.</param>
/// <param name="MeanTokensPerSecond">Non-padding tokens over the summed step times.</param>
/// <param name="Memory">Memory held at the end.</param>
/// <param name="TrainableParameters">Parameters the optimizer updated.</param>
/// <param name="TotalParameters">Base model parameters plus the adapter's (full fine-tuning: the base alone).</param>
public sealed record TrainingResult(int Steps, double FinalLoss, EvalMetrics? FirstEval, EvalMetrics? FinalEval, string? AdapterDir,
    double WallSeconds, double MeanTokensPerSecond, MemoryReport Memory, long TrainableParameters, long TotalParameters);

/// <summary>Receives progress; the CLI renders it as a live bar or plain log lines.</summary>
public interface ITrainingObserver
{
    /// <summary>Called once, before the first step.</summary>
    /// <param name="plan">What the run will do.</param>
    void OnStart(TrainingPlan plan);
    /// <summary>Called after every optimizer step.</summary>
    /// <param name="m">The step's measurements.</param>
    void OnStep(StepMetrics m);
    /// <summary>Called after each evaluation (before the first step, every eval_steps, and after the last).</summary>
    /// <param name="m">The evaluation's result.</param>
    void OnEval(EvalMetrics m);
    /// <summary>Called with a one-line note for the user (e.g. how the base model is quantized).</summary>
    /// <param name="message">The note, without a trailing newline.</param>
    void OnMessage(string message);
}

/// <summary>An observer that ignores everything.</summary>
public sealed class NullObserver : ITrainingObserver
{
    /// <summary>The shared instance (it has no state).</summary>
    public static readonly NullObserver Instance = new();
    /// <inheritdoc/>
    public void OnStart(TrainingPlan plan) { }
    /// <inheritdoc/>
    public void OnStep(StepMetrics m) { }
    /// <inheritdoc/>
    public void OnEval(EvalMetrics m) { }
    /// <inheritdoc/>
    public void OnMessage(string message) { }
}
