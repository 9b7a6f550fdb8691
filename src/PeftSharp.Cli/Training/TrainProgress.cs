using PeftSharp.Training;
using Spectre.Console;

namespace PeftSharp.Cli.Training;

/// <summary>
/// Renders training progress: a live bar (loss with a short history, tokens/s, ETA, memory) on a terminal, plain
/// log lines when output is redirected (CI logs, files).
/// </summary>
internal sealed class TrainProgress : ITrainingObserver
{
    const int HistoryLength = 16;
    readonly bool _live;
    readonly int _loggingSteps;
    readonly Queue<double> _losses = new();
    ProgressTask? _task;

    /// <summary>The optimizer state the run will hold once it has taken a step (the optimizer allocates it then,
    /// so the trainer's report at the start says 0); shown in the start-of-run memory line when set.</summary>
    public long? OptimizerStateBytes { get; set; }

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
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
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
        Write(MemoryLine(p.Memory, OptimizerStateBytes));
        if (_task != null) { _task.MaxValue = p.TotalSteps; _task.Value = p.StartStep; }
    }

    /// <summary>The start-of-run memory line; the optimizer's size is the larger of what it holds now and what it
    /// will hold after its first step.</summary>
    public static string MemoryLine(MemoryReport m, long? optimizerStateBytes) =>
        $"memory: frozen weights {Mib(m.FrozenWeightBytes)}, trainable {Mib(m.TrainableBytes)} (+ grads {Mib(m.GradientBytes)}), " +
        $"optimizer {Mib(Math.Max(m.OptimizerBytes, optimizerStateBytes ?? 0))}";

    public void OnStep(StepMetrics m)
    {
        _losses.Enqueue(m.Loss);
        while (_losses.Count > HistoryLength) _losses.Dequeue();
        double eta = m.Step > 0 ? m.ElapsedSeconds / m.Step * (m.TotalSteps - m.Step) : 0;
        string line = StepLine(m, eta);
        if (_task != null)
        {
            _task.Value = m.Step;
            _task.Description = Markup.Escape(LiveLine(m, eta, _losses));
        }
        else if (m.Step % _loggingSteps == 0 || m.Step == m.TotalSteps)
            Console.WriteLine(line);
    }

    /// <summary>One step's line: loss, learning rate as 3.0e-3, gradient norm, throughput, memory, labelled ETA.</summary>
    public static string StepLine(StepMetrics m, double etaSeconds) =>
        $"step {m.Step}/{m.TotalSteps}  loss {m.Loss:F4}  lr {NumberFormat.Lr(m.Lr)}  grad {m.GradNorm:F3}  {m.TokensPerSecond:F0} tok/s  " +
        $"rss {m.RssMb:F0} MB  ETA {TimeSpan.FromSeconds(Math.Round(etaSeconds)):g}";

    /// <summary>The live line, most important first (a narrow terminal cuts the end): loss with its recent
    /// history, learning rate, labelled ETA, throughput, then gradient norm and memory.</summary>
    public static string LiveLine(StepMetrics m, double etaSeconds, IEnumerable<double> recentLosses) =>
        $"step {m.Step}/{m.TotalSteps}  loss {m.Loss:F4} {Sparkline(recentLosses)}  lr {NumberFormat.Lr(m.Lr)}  " +
        $"ETA {TimeSpan.FromSeconds(Math.Round(etaSeconds)):g}  {m.TokensPerSecond:F0} tok/s  grad {m.GradNorm:F3}  rss {m.RssMb:F0} MB";

    /// <summary>The recent losses as block characters, lowest ▁ to highest █ of the window.</summary>
    public static string Sparkline(IEnumerable<double> values)
    {
        const string Blocks = "▁▂▃▄▅▆▇█";
        var v = values.Where(double.IsFinite).ToArray();
        if (v.Length == 0) return "";
        double lo = v.Min(), hi = v.Max();
        return string.Concat(v.Select(x => Blocks[hi > lo ? (int)Math.Round((x - lo) / (hi - lo) * (Blocks.Length - 1)) : 0]));
    }

    public void OnEval(EvalMetrics m) => Write($"eval @ step {m.Step}: loss {m.Loss:F4}, perplexity {m.Perplexity:F2} ({m.Tokens} tokens)");

    public void OnMessage(string message) => Write(message);

    void Write(string s)
    {
        if (_live) AnsiConsole.MarkupLine(Markup.Escape(s));
        else Console.WriteLine(s);
    }

    static string Mib(long bytes) => $"{bytes / 1048576.0:F1} MiB";
}
