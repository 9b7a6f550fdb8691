using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftSharp.Cli.Training;
using PeftSharp.Evaluation;
using PeftSharp.IO;
using PeftSharp.Training;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft train`: fine-tune with LoRA, DoRA or full fine-tuning. With no arguments it fine-tunes the embedded default
/// model on the demo task (assets/demo/train.yaml) and reports eval loss, exact match and generations before/after.
/// </summary>
internal sealed class TrainCommand : ICliCommand
{
    public Command Build()
    {
        var config = new Option<string?>("--config") { Description = "YAML file of settings (same names as the flags, snake_case)" };
        var taskEval = new Option<int>("--task-eval") { Description = "eval examples for the exact-match task metric, before and after (0 = off)", DefaultValueFactory = _ => 64 };
        var threads = SharedOptions.Threads();
        var device = SharedOptions.Device();
        var settings = TrainSettings.CreateOptions(DemoSettings());
        var cmd = new Command("train",
            "fine-tune a model (LoRA, DoRA, QLoRA, QDoRA or full). With no --model, --data or --config it runs the demo: " +
            "the embedded default model on the demo task, with assets/demo/train.yaml over the library defaults " +
            "(each flag shows the library default, and the demo's value where the demo differs)");
        cmd.Options.Add(config);
        cmd.Options.Add(taskEval);
        cmd.Options.Add(threads);
        cmd.Options.Add(device);
        foreach (var (_, o) in settings) cmd.Options.Add(o);
        cmd.SetAction(pr => MpiLaunch.Run(comm =>   // under mpirun: data parallel over its ranks
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads), pr.GetValue(device)!);
            var request = Resolve(pr, pr.GetValue(config), settings);
            var options = TrainSettings.Finish(request, o => EpochSteps.BatchesPerEpoch(o, comm.Size));
            if (request.NumTrainEpochs != null)
                Console.WriteLine($"num_train_epochs {request.NumTrainEpochs}: {options.MaxSteps} optimizer steps");
            return Train(options, compute, pr.GetValue(taskEval), request.ReportTo, comm);
        }));
        return cmd;
    }

    static string DemoYaml => Path.Combine(DefaultAssets.Root, "demo", "train.yaml");

    /// <summary>The demo's settings (for --help); null when the assets are missing, which --help does not need.</summary>
    static TrainRequest? DemoSettings()
    {
        try { return TrainSettings.ApplyYaml(new TrainRequest(new TrainingOptions { ModelDir = "", DataFile = "", OutputDir = "" }), DemoYaml); }
        catch (PeftException) { return null; }
    }

    static TrainRequest Resolve(ParseResult pr, string? yaml, List<(TrainSettings.Setting Setting, Option Option)> settings)
    {
        bool modelGiven = settings.Any(s => s.Setting.Key == "model" && pr.GetResult(s.Option) != null);
        bool dataGiven = settings.Any(s => s.Setting.Key == "data" && pr.GetResult(s.Option) != null);
        var r = new TrainRequest(new TrainingOptions { ModelDir = "", DataFile = "", OutputDir = "" });
        if (yaml == null && !modelGiven && !dataGiven)
        {
            // The embedded demo: its settings file, model, data and eval split.
            r = TrainSettings.ApplyYaml(r with { Options = r.Options with { ModelDir = DefaultAssets.Model, DataFile = DefaultAssets.Data, EvalFile = DefaultAssets.Eval } },
                DemoYaml);
        }
        if (yaml != null) r = TrainSettings.ApplyYaml(r, yaml);
        r = TrainSettings.ApplyFlags(r, pr, settings);
        var o = r.Options;
        o = o with { ModelDir = o.ModelDir == "" ? DefaultAssets.Model : ModelLocator.Resolve(o.ModelDir) };
        if (o.DataFile == "") throw new PeftException("--data is required when --model is given (a .jsonl/.json file)");
        if (o.OutputDir == "") o = o with { OutputDir = Path.Combine("runs", o.Method) };
        return r with { Options = o };
    }

    public static int Train(TrainingOptions options, PeftSharp.Compute.ComputeContext compute, int taskEvalExamples, IReadOnlyList<string>? reportTo = null,
        PeftSharp.Distributed.ICommunicator? comm = null)
    {
        comm ??= PeftSharp.Distributed.SingleProcess.Instance;
        TrainPreflight.Check(options);
        using var folder = comm.Rank == 0 ? RunFolder.Open(options.OutputDir, options.ResumeFrom != null, options.Overwrite) : null;   // rank 0 owns the folder
        foreach (var r in folder?.Removed ?? []) Console.WriteLine($"removed {r}");
        using var interrupt = new TrainInterrupt();
        try { return Train(options, compute, taskEvalExamples, reportTo, comm, interrupt.Token); }
        catch (TrainingInterruptedException e)
        {
            Console.Error.WriteLine(e.Checkpoint != null
                ? $"interrupted after step {e.CompletedSteps}; checkpoint {e.Checkpoint}\nresume with:\n  {TrainPreflight.ResumeCommand(Environment.GetCommandLineArgs()[1..])}"
                : $"interrupted before the first step; nothing to resume");
            return 130;
        }
    }

    static int Train(TrainingOptions options, PeftSharp.Compute.ComputeContext compute, int taskEvalExamples, IReadOnlyList<string>? reportTo,
        PeftSharp.Distributed.ICommunicator comm, CancellationToken cancel)
    {
        if (comm.Rank != 0) taskEvalExamples = 0;   // generation-based task metric: rank 0 alone
        var progress = new TrainProgress(live: !Console.IsOutputRedirected && !Console.IsErrorRedirected, options.LoggingSteps);
        Console.WriteLine($"model {options.ModelDir}\ndata  {options.DataFile}{(options.EvalFile != null ? $" (eval {options.EvalFile})" : "")}\nout   {options.OutputDir}");
        // TensorBoard events, like every file of the run, come from rank 0 alone.
        using var tensorBoard = comm.Rank == 0 && reportTo?.Contains("tensorboard") == true ? new TensorBoardObserver(Path.Combine(options.OutputDir, "runs")) : null;
        if (tensorBoard != null) Console.WriteLine($"tensorboard: event files in {tensorBoard.Folder} (view with: tensorboard --logdir {tensorBoard.Folder})");
        using var trainer = new TrainingRun(options, compute, tensorBoard != null ? new ObserverFanOut(progress, tensorBoard) : progress, comm);
        // The optimizer allocates its state at the first step; the start-of-run line shows the size it will take.
        progress.OptimizerStateBytes = PeftSharp.Planning.MemoryEstimator.OptimizerStateBytes(
            trainer.Model.TrainableParameters().Select(p => (long)p.Count), options.Optimizer);
        var evalSet = trainer.Data.Eval;
        ExactMatchResult? before = null;
        if (taskEvalExamples > 0 && options.ResumeFrom == null && evalSet.Count > 0)
        {
            before = ExactMatch.Evaluate(trainer.Model.Model, compute, trainer.Model.Route(trainer.Model.Active), trainer.Tokenizer, evalSet, taskEvalExamples);
            if (before.Examples == 0) before = null;   // plain-text data: no completion task
        }
        var result = progress.Run(() => trainer.Run(cancel));
        ExactMatchResult? after = before != null ? ExactMatch.Evaluate(trainer.Model.Model, compute, trainer.Model.Route(trainer.Model.Active), trainer.Tokenizer, evalSet, taskEvalExamples) : null;

        Console.WriteLine();
        Console.WriteLine($"done: {result.Steps} steps in {result.WallSeconds:F1} s, {result.MeanTokensPerSecond:F0} tokens/s, final train loss {result.FinalLoss:F4}, peak RSS {result.Memory.PeakRssMb:F0} MB");
        if (result.FirstEval != null && result.FinalEval != null)
            Console.WriteLine($"eval loss {result.FirstEval.Loss:F4} → {result.FinalEval.Loss:F4}   perplexity {result.FirstEval.Perplexity:F2} → {result.FinalEval.Perplexity:F2}");
        else if (result.FinalEval != null)
            Console.WriteLine($"eval loss {result.FinalEval.Loss:F4}, perplexity {result.FinalEval.Perplexity:F2}");
        var report = new JsonObject
        {
            ["steps"] = result.Steps, ["final_train_loss"] = result.FinalLoss,
            ["eval_loss_before"] = result.FirstEval?.Loss, ["eval_loss_after"] = result.FinalEval?.Loss,
        };
        if (before != null && after != null)
        {
            Console.WriteLine($"exact match (greedy, {after.Examples} eval examples): {before.Rate:P1} → {after.Rate:P1}");
            Console.WriteLine();
            int shown = 0;
            for (int i = 0; i < after.Samples.Count && shown < 3; i++, shown++)
            {
                Console.WriteLine($"prompt:   {OneLine(after.Samples[i].Prompt)}");
                Console.WriteLine($"  before: {OneLine(before.Samples[i].Generated)}");
                Console.WriteLine($"  after:  {OneLine(after.Samples[i].Generated)}");
                Console.WriteLine($"  target: {OneLine(after.Samples[i].Expected)}");
            }
            report["exact_match_before"] = before.Rate;
            report["exact_match_after"] = after.Rate;
            report["samples"] = new JsonArray(after.Samples.Take(8).Select((s, i) => (JsonNode)new JsonObject
            {
                ["prompt"] = s.Prompt, ["target"] = s.Expected, ["before"] = before.Samples[i].Generated, ["after"] = s.Generated,
            }).ToArray());
        }
        if (comm.Rank != 0) return 0;   // rank 0 writes the files
        AtomicFile.WriteAllText(Path.Combine(options.OutputDir, "evaluation.json"), report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine();
        Console.WriteLine($"saved {(options.Method == "full" ? "model" : "adapter")} to {result.AdapterDir}");
        if (options.Method != "full")
        {
            // The embedded model by its short name (its real path is deep inside the installed tool).
            string model = Path.GetFullPath(options.ModelDir) == Path.GetFullPath(DefaultAssets.Model) ? DefaultAssets.ModelFolder : options.ModelDir;
            Console.WriteLine("next:");
            Console.WriteLine($"  peft generate {model} --adapter {result.AdapterDir} --prompt \"...\"");
            if (PeftSharp.Templates.ChatTemplateSource.TryLoad(options.ModelDir) != null)
                Console.WriteLine($"  peft chat {model} --adapter {result.AdapterDir}");
            Console.WriteLine($"  peft merge {model} --adapter {result.AdapterDir} --out {Path.Combine(options.OutputDir, "merged")}");
        }
        return 0;
    }

    static string OneLine(string s) => s.Replace("\n", "\\n");
}
