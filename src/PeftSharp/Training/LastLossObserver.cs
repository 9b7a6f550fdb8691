namespace PeftSharp.Training;

/// <summary>Passes progress on and remembers the loss of the latest step, so a checkpoint can record it and a run
/// resumed after its last step still reports a final loss.</summary>
internal sealed class LastLossObserver(ITrainingObserver inner) : ITrainingObserver
{
    public double LastLoss { get; set; } = double.NaN;

    public void OnStart(TrainingPlan plan) => inner.OnStart(plan);
    public void OnStep(StepMetrics m) { LastLoss = m.Loss; inner.OnStep(m); }
    public void OnEval(EvalMetrics m) => inner.OnEval(m);
    public void OnMessage(string message) => inner.OnMessage(message);
}
