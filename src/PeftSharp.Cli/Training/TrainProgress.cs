using PeftSharp.Training;
using Spectre.Console;

namespace PeftSharp.Cli.Training;

/// <summary>
/// Renders training progress: a live bar (loss, tokens/s, ETA, memory) on a terminal, plain log lines when output is
/// redirected (CI logs, files).
/// </summary>
internal sealed class TrainProgress : ITrainingObserver
{
    readonly bool _live;
    ProgressTask? _task;
    int _loggingSteps;

    public TrainProgress(bool live, int loggingSteps)
    {
        _live = live;
        _loggingSteps = Math.Max(1, loggingSteps);
    }

    /// <summary>Runs <paramref name="body"/> with the live display active (or plainly).</summary>
    public T Run<T>(Func<T> body)
    {
        if (!_live) return body();
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                _task = ctx.AddTask("starting", autoStart: true, maxValue: 1);
                result = body();
            });
        return result;
    }

    public void OnStart(TrainingPlan p)
    {
        string pct = p.TotalParameters > 0 ? $"{100.0 * p.TrainableParameters / p.TotalParameters:F3}%" : "?";
        Write($"method {p.Method}: {p.TrainableParameters:N0} trainable of {p.TotalParameters:N0} parameters ({pct}); " +
              $"data {p.DataFormat}: {p.TrainExamples} train / {p.EvalExamples} eval examples" +
              (p.SkippedRecords > 0 ? $", {p.SkippedRecords} bad records skipped" : "") +
              (p.ResumedFrom != null ? $"; resuming at step {p.StartStep} from {p.ResumedFrom}" : ""));
        Write($"memory: frozen weights {Mb(p.Memory.FrozenWeightBytes)}, trainable {Mb(p.Memory.TrainableBytes)} (+ grads {Mb(p.Memory.GradientBytes)}), " +
              $"optimizer {Mb(p.Memory.OptimizerBytes)}");
        if (_task != null) { _task.MaxValue = p.TotalSteps; _task.Value = p.StartStep; }
    }

    public void OnStep(StepMetrics m)
    {
        string line = $"step {m.Step}/{m.TotalSteps}  loss {m.Loss:F4}  lr {m.Lr:E2}  grad {m.GradNorm:F3}  {m.TokensPerSecond:F0} tok/s  rss {m.RssMb:F0} MB";
        if (_task != null)
        {
            _task.Value = m.Step;
            _task.Description = Markup.Escape(line);
        }
        else if (m.Step % _loggingSteps == 0 || m.Step == m.TotalSteps)
        {
            double eta = m.Step > 0 ? m.ElapsedSeconds / m.Step * (m.TotalSteps - m.Step) : 0;
            Console.WriteLine($"{line}  eta {TimeSpan.FromSeconds(Math.Round(eta)):g}");
        }
    }

    public void OnEval(EvalMetrics m) => Write($"eval @ step {m.Step}: loss {m.Loss:F4}, perplexity {m.Perplexity:F2} ({m.Tokens} tokens)");

    public void OnMessage(string message) => Write(message);

    void Write(string s)
    {
        if (_live) AnsiConsole.MarkupLine(Markup.Escape(s));
        else Console.WriteLine(s);
    }

    static string Mb(long bytes) => $"{bytes / 1048576.0:F1} MB";
}
