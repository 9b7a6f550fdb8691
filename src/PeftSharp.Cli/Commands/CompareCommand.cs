using System.CommandLine;
using System.Globalization;
using PeftSharp.Cli.Training;
using PeftSharp.Cli.Comparison;
using Spectre.Console;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft compare`: runs several fine-tuning methods (default full, lora, dora, qlora, qdora) on one model and data set
/// with identical settings, each in its own process (once per seed with --seeds N), and writes a terminal table, report.md, report.json and a
/// self-contained report.html. With no arguments it uses the embedded default model and demo task. Finished methods
/// are kept, so an interrupted comparison continues where it stopped when the same command is run again.
/// </summary>
internal sealed class CompareCommand : ICliCommand
{
    public const string DefaultOutputDir = "runs/compare";

    public Command Build()
    {
        var defaults = new ComparisonSettings { ModelDir = "", DataFile = "", OutputDir = "" };
        var model = new Option<string?>("--model") { Description = "Hugging Face model folder (default: the embedded demo model)" };
        var data = new Option<string?>("--data") { Description = "training data .jsonl/.json (default: the demo task)" };
        var evalData = new Option<string?>("--eval-data") { Description = "evaluation data (default: the demo eval split; with --data: held out by the trainer)" };
        var config = new Option<string?>("--config") { Description = "YAML of further training settings for every method (default with the demo: assets/demo/train.yaml)" };
        var methods = new Option<string>("--methods") { Description = "comma list of methods, run in this order (full, lora, dora, qlora, qdora, loftq)", DefaultValueFactory = _ => string.Join(",", ComparisonSettings.DefaultMethods) };
        var output = new Option<string>("--output-dir") { Description = "one sub-folder per method, plus the reports", DefaultValueFactory = _ => DefaultOutputDir };
        var maxSteps = new Option<int>("--max-steps") { Description = "optimizer steps per method", DefaultValueFactory = _ => defaults.MaxSteps };
        var seed = new Option<int>("--seed") { Description = "seed of the first run of every method", DefaultValueFactory = _ => defaults.Seed };
        var seeds = new Option<int>("--seeds")
        {
            Description = "runs per method, with seeds --seed, --seed + 1, …; reports mean ± spread and calls a verdict only when a difference exceeds it",
            DefaultValueFactory = _ => defaults.Seeds,
        };
        var lr = new Option<double>("--learning-rate") { Description = "peak learning rate of every method without an override", DefaultValueFactory = _ => defaults.LearningRate };
        var lrFull = new Option<double>("--lr-full") { Description = "learning rate of full fine-tuning (smaller on purpose: it updates every weight)", DefaultValueFactory = _ => ComparisonSettings.DefaultLearningRateOverrides["full"] };
        var lrOverride = new Option<string[]>("--lr-override") { Description = "per-method learning rate, method=value (repeatable or comma list)", AllowMultipleArgumentsPerToken = true };
        var scheduler = new Option<string>("--lr-scheduler-type") { DefaultValueFactory = _ => defaults.LrScheduler };
        var r = new Option<int>("--r") { Description = "LoRA rank (all adapter methods)", DefaultValueFactory = _ => defaults.R };
        var alpha = new Option<double>("--lora-alpha") { DefaultValueFactory = _ => defaults.LoraAlpha };
        var taskEval = new Option<int>("--task-eval") { Description = "eval examples for the exact-match task metric (0 = off)", DefaultValueFactory = _ => defaults.TaskEval };
        var loftqIter = new Option<int>("--loftq-iter") { Description = "LoftQ steps of the loftq method (QLoRA initialized by LoftQ)", DefaultValueFactory = _ => defaults.LoftqIter };
        var force = new Option<bool>("--force") { Description = "rerun methods that already finished" };
        var threads = SharedOptions.Threads();
        var cmd = new Command("compare", "compare fine-tuning methods (full, LoRA, DoRA, QLoRA, QDoRA; also loftq: QLoRA initialized by LoftQ) on one model and data set; writes report.md/.json/.html");
        foreach (var o in new Option[] { model, data, evalData, config, methods, output, maxSteps, seed, seeds, lr, lrFull, lrOverride, scheduler, r, alpha, taskEval, loftqIter, force, threads })
            cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            string? modelDir = pr.GetValue(model), dataFile = pr.GetValue(data), evalFile = pr.GetValue(evalData), yaml = pr.GetValue(config);
            if (modelDir == null && dataFile == null)
            {
                modelDir = DefaultAssets.Model;
                dataFile = DefaultAssets.Data;
                evalFile ??= DefaultAssets.Eval;
                string demoYaml = Path.Combine(DefaultAssets.Root, "demo", "train.yaml");
                if (yaml == null && File.Exists(demoYaml)) yaml = demoYaml;
            }
            if (dataFile == null) throw new PeftException("--data is required when --model is given (a .jsonl/.json file)");
            modelDir ??= DefaultAssets.Model;
            var overrides = new Dictionary<string, double>(ComparisonSettings.ParseOverrides(pr.GetValue(lrOverride) ?? []));
            overrides.TryAdd("full", pr.GetValue(lrFull));
            var settings = new ComparisonSettings
            {
                ModelDir = modelDir, DataFile = dataFile, EvalFile = evalFile, ConfigFile = yaml, OutputDir = pr.GetValue(output)!,
                Methods = pr.GetValue(methods)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(m => m.ToLowerInvariant()).ToList(),
                MaxSteps = pr.GetValue(maxSteps), Seed = pr.GetValue(seed), Seeds = pr.GetValue(seeds), LearningRate = pr.GetValue(lr), LrScheduler = pr.GetValue(scheduler)!,
                R = pr.GetValue(r), LoraAlpha = pr.GetValue(alpha), TaskEval = pr.GetValue(taskEval), Threads = Math.Max(1, pr.GetValue(threads)),
                LearningRateOverrides = overrides, Force = pr.GetValue(force), LoftqIter = pr.GetValue(loftqIter),
            };
            return Run(settings);
        }));
        return cmd;
    }

    static int Run(ComparisonSettings settings)
    {
        var runner = ProcessMethodRunner.ForCurrentProcess(typeof(CompareCommand).Assembly.Location);
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        ComparisonReport report;
        try { report = ComparisonRun.Execute(settings, runner, new ConsoleObserver(settings), cts.Token); }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"interrupted; run the same command again to continue (finished methods under {settings.OutputDir} are kept)");
            return 130;
        }
        finally { Console.CancelKeyPress -= onCancel; }

        var paths = ReportFiles.Write(report, settings.OutputDir);
        Console.WriteLine();
        PrintTable(report);
        Console.WriteLine();
        Console.WriteLine(SeedsNote.Text(report));
        Console.WriteLine();
        foreach (var c in report.Claims) Console.WriteLine($"{c.Title} ({c.Source.Citation}): {c.VerdictText} — {c.Ours}");
        Console.WriteLine();
        Console.WriteLine($"reports: {paths.Markdown}\n         {paths.Json}\n         {paths.Html}");
        return report.Results.All(x => x.Succeeded) ? 0 : 2;
    }

    static void PrintTable(ComparisonReport report)
    {
        if (Console.IsOutputRedirected)
        {
            Console.Write(ResultTable.PlainText(report));
            return;
        }
        var table = new Table().Border(TableBorder.Rounded);
        for (int c = 0; c < ResultTable.Headers.Length; c++)
            table.AddColumn(new TableColumn(Markup.Escape(ResultTable.Headers[c])) { Alignment = ResultTable.IsNumeric(c) ? Justify.Right : Justify.Left });
        foreach (var (row, res) in ResultTable.Rows(report).Zip(report.Results))
            table.AddRow(row.Select((cell, c) => c == 1 && !res.Succeeded ? $"[red]{Markup.Escape(cell)}[/]" : Markup.Escape(cell)).ToArray());
        AnsiConsole.Write(table);
        foreach (var f in report.Results.Where(x => !x.Succeeded)) AnsiConsole.MarkupLine($"[red]{Markup.Escape(f.Method)} failed:[/] {Markup.Escape(f.Error ?? "")}");
    }

    /// <summary>One line per method start/end; on a terminal, the child's latest step line is shown in place.</summary>
    sealed class ConsoleObserver(ComparisonSettings settings) : IComparisonObserver
    {
        readonly bool _live = !Console.IsOutputRedirected;
        readonly object _gate = new();
        bool _lineOpen;

        public void OnMethodStart(string method, int seed, int index, int count, bool reused)
        {
            string name = settings.Seeds > 1 ? $"{method} (seed {seed})" : method;
            string dir = settings.RunDir(method, seed);
            Console.WriteLine(reused
                ? $"[{index + 1}/{count}] {name}: finished earlier, not run again ({dir})"
                : $"[{index + 1}/{count}] {name}: training (lr {settings.LearningRateFor(method).ToString("0.###e+0", CultureInfo.InvariantCulture)}, " +
                  $"log {Path.Combine(dir, "train.log")})");
        }

        public void OnOutputLine(string method, string line)
        {
            if (!_live || !line.StartsWith("step ", StringComparison.Ordinal)) return;
            int width = Width();
            string text = ("  " + line).Length > width ? ("  " + line)[..width] : ("  " + line).PadRight(width);
            lock (_gate) { Console.Write("\r" + text); _lineOpen = true; }
        }

        static int Width()
        {
            try { return Math.Max(20, Console.WindowWidth - 1); }
            catch (IOException) { return 119; }
        }

        public void OnMethodEnd(MethodResult r)
        {
            lock (_gate) { if (_lineOpen) { Console.Write("\r" + new string(' ', Width()) + "\r"); _lineOpen = false; } }
            if (r.Succeeded)
                Console.WriteLine($"  {r.Method}{(settings.Seeds > 1 ? $" (seed {string.Join(",", r.Seeds)})" : "")}: {Fmt.Seconds(r.WallSeconds)}, final train loss {Fmt.Num(r.FinalTrainLoss, 4)}, eval loss {Fmt.Num(r.EvalLoss, 4)}, " +
                                  $"peak RSS {Fmt.Mib(r.PeakRssMib)}, {Fmt.Num(r.TokensPerSecond, 0)} tokens/s");
            else
                Console.WriteLine($"  {r.Method}: FAILED — {r.Error} (log {r.LogFile})");
        }
    }
}
