using PeftSharp.Training;

namespace PeftSharp.Cli.Training;

/// <summary>`--report-to tensorboard`: the trainer's step and eval events as TensorBoard scalars under
/// <c>{output_dir}/runs/</c> (view with <c>tensorboard --logdir {output_dir}/runs</c>), named as transformers names them.</summary>
internal sealed class TensorBoardObserver(string folder) : ITrainingObserver, IDisposable
{
    // Opened at the start of training, so a run that fails while loading leaves no empty event file.
    TfEventsWriter? _file;

    TfEventsWriter _writer => _file ?? throw new InvalidOperationException("TensorBoardObserver: an event before OnStart");

    public string Folder => folder;

    /// <summary>The event file, once training has started.</summary>
    public string? FilePath => _file?.Path;

    public void OnStart(TrainingPlan plan) => _file ??= new TfEventsWriter(folder);

    public void OnStep(StepMetrics m)
    {
        _writer.Scalar("train/loss", m.Loss, m.Step);
        _writer.Scalar("train/learning_rate", m.Lr, m.Step);
        _writer.Scalar("train/grad_norm", m.GradNorm, m.Step);
        _writer.Scalar("train/tokens_per_second", m.TokensPerSecond, m.Step);
        _writer.Scalar("train/epoch", m.Epoch, m.Step);
    }

    public void OnEval(EvalMetrics m)
    {
        _writer.Scalar("eval/loss", m.Loss, m.Step);
        _writer.Scalar("eval/perplexity", m.Perplexity, m.Step);
    }

    public void OnMessage(string message) { }

    public void Dispose() => _file?.Dispose();
}

/// <summary>Passes every training event to each observer in turn (the progress display, then loggers).</summary>
internal sealed class ObserverFanOut(params ITrainingObserver[] observers) : ITrainingObserver
{
    public void OnStart(TrainingPlan plan) { foreach (var o in observers) o.OnStart(plan); }
    public void OnStep(StepMetrics m) { foreach (var o in observers) o.OnStep(m); }
    public void OnEval(EvalMetrics m) { foreach (var o in observers) o.OnEval(m); }
    public void OnMessage(string message) { foreach (var o in observers) o.OnMessage(message); }
}
