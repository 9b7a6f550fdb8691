namespace PeftSharp.Training;

/// <summary>One optimizer step's measurements (also one line of metrics.jsonl).</summary>
public sealed record StepMetrics(int Step, int TotalSteps, double Loss, double Lr, double GradNorm, double TokensPerSecond,
    double StepMs, double RssMb, double ElapsedSeconds, int Epoch);

public sealed record EvalMetrics(int Step, double Loss, double Perplexity, int Tokens);

/// <summary>What the run is about to do (printed once at the start).</summary>
public sealed record TrainingPlan(string Method, long TrainableParameters, long TotalParameters, int TrainExamples, int EvalExamples,
    int SkippedRecords, string DataFormat, int StartStep, int TotalSteps, string? ResumedFrom, MemoryReport Memory);

/// <summary>Bytes by kind, as the run holds them (frozen weights, trainable parameters, gradients, optimizer state,
/// activations) and the process's peak resident set.</summary>
public sealed record MemoryReport(long FrozenWeightBytes, long TrainableBytes, long GradientBytes, long OptimizerBytes,
    long ActivationBytes, double PeakRssMb)
{
    public long AccountedBytes => FrozenWeightBytes + TrainableBytes + GradientBytes + OptimizerBytes + ActivationBytes;
}

public sealed record TrainingResult(int Steps, double FinalLoss, EvalMetrics? FirstEval, EvalMetrics? FinalEval, string? AdapterDir,
    double WallSeconds, double MeanTokensPerSecond, MemoryReport Memory, long TrainableParameters, long TotalParameters);

/// <summary>Receives progress; the CLI renders it as a live bar or plain log lines.</summary>
public interface ITrainingObserver
{
    void OnStart(TrainingPlan plan);
    void OnStep(StepMetrics m);
    void OnEval(EvalMetrics m);
    void OnMessage(string message);
}

public sealed class NullObserver : ITrainingObserver
{
    public static readonly NullObserver Instance = new();
    public void OnStart(TrainingPlan plan) { }
    public void OnStep(StepMetrics m) { }
    public void OnEval(EvalMetrics m) { }
    public void OnMessage(string message) { }
}
