using System.Text.Json;
using PeftSharp.IO;

namespace PeftSharp.Cli.Comparison;

/// <summary>Progress of a comparison (the CLI prints it).</summary>
internal interface IComparisonObserver
{
    void OnMethodStart(string method, int seed, int index, int count, bool reused);
    void OnOutputLine(string method, string line);
    void OnMethodEnd(MethodResult result);
}

/// <summary>
/// Runs the methods one after another, each in its own process, and collects their results; with several seeds, every
/// method runs once per seed (all methods for the first seed, then for the next), and each method's runs are folded
/// into one result by <see cref="SeedAggregate"/>. A run whose folder
/// already holds summary.json finished in an earlier invocation and is not run again (unless Force); its recorded
/// arguments must match this invocation's, so results of different settings are never mixed silently.
/// </summary>
internal static class ComparisonRun
{
    public const string ArgumentsFile = "compare-args.json";

    public static ComparisonReport Execute(ComparisonSettings s, IMethodRunner runner, IComparisonObserver? observer = null,
        CancellationToken cancel = default)
    {
        s.Validate();
        Directory.CreateDirectory(s.OutputDir);
        var started = DateTimeOffset.UtcNow;
        var runs = new List<MethodResult>();
        var seeds = s.SeedList;
        int count = s.Methods.Count * seeds.Count, index = 0;
        foreach (int seed in seeds)
            foreach (string method in s.Methods)
            {
                cancel.ThrowIfCancellationRequested();
                var result = RunOne(s, method, seed, index++, count, runner, observer, cancel);
                runs.Add(result);
                observer?.OnMethodEnd(result);
            }
        var results = s.Methods.Select(m => SeedAggregate.Combine(runs.Where(r => r.Method == m).ToList())).ToList();
        return new ComparisonReport
        {
            Settings = s,
            Results = results,
            Runs = runs,
            Claims = SeedClaims.Evaluate(results),
            CreatedUtc = started,
            Machine = $"{Environment.ProcessorCount} logical cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, " +
                      $".NET {Environment.Version}, --threads {s.Threads}",
        };
    }

    static MethodResult RunOne(ComparisonSettings s, string method, int seed, int index, int count, IMethodRunner runner,
        IComparisonObserver? observer, CancellationToken cancel)
    {
        string dir = s.RunDir(method, seed);
        var args = s.TrainArguments(method, seed);
        bool reuse = !s.Force && RunResultReader.IsFinished(dir);
        if (reuse) CheckSameArguments(dir, args);
        observer?.OnMethodStart(method, seed, index, count, reuse);
        if (reuse) return RunResultReader.Read(method, dir, MethodStatus.Reused, s.LearningRateFor(method)) with { Seeds = [seed] };
        // An unfinished folder (interrupted run) is started afresh, so that wall time and memory cover one
        // uninterrupted run.
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, ArgumentsFile), JsonSerializer.Serialize(args));
        string log = Path.Combine(dir, "train.log");
        var outcome = runner.Run(args, log, l => observer?.OnOutputLine(method, l), cancel);
        return outcome.ExitCode == 0 && RunResultReader.IsFinished(dir)
            ? RunResultReader.Read(method, dir, MethodStatus.Trained, s.LearningRateFor(method)) with { Seeds = [seed] }
            : new MethodResult
            {
                Method = method, Status = MethodStatus.Failed, LearningRate = s.LearningRateFor(method), LogFile = log, Seeds = [seed],
                Error = outcome.Error ?? $"training exited with 0 but wrote no {RunResultReader.SummaryFile}",
                TrainLoss = RunResultReader.ReadCurves(Path.Combine(dir, RunResultReader.MetricsFile)).Train,
            };
    }

    static void CheckSameArguments(string dir, IReadOnlyList<string> args)
    {
        string path = Path.Combine(dir, ArgumentsFile);
        if (!File.Exists(path)) return;   // finished by a plain `peft train` into this folder: accepted as is
        string[]? before;
        try { before = JsonSerializer.Deserialize<string[]>(File.ReadAllText(path)); }
        catch (JsonException) { before = null; }
        if (before == null || !before.SequenceEqual(args))
            throw new PeftException($"{dir} holds a finished run with different settings ({path}); " +
                                    "rerun with --force, or choose another --output-dir");
    }
}
