using System.Text.Json;
using PeftSharp.IO;

namespace PeftSharp.Cli.Comparison;

/// <summary>Progress of a comparison (the CLI prints it).</summary>
internal interface IComparisonObserver
{
    void OnMethodStart(string method, int index, int count, bool reused);
    void OnOutputLine(string method, string line);
    void OnMethodEnd(MethodResult result);
}

/// <summary>
/// Runs the methods one after another, each in its own process, and collects their results. A method whose folder
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
        var results = new List<MethodResult>();
        for (int i = 0; i < s.Methods.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            string method = s.Methods[i];
            string dir = s.MethodDir(method);
            var args = s.TrainArguments(method);
            bool reuse = !s.Force && RunResultReader.IsFinished(dir);
            if (reuse) CheckSameArguments(dir, args);
            observer?.OnMethodStart(method, i, s.Methods.Count, reuse);
            MethodResult result;
            if (reuse)
                result = RunResultReader.Read(method, dir, MethodStatus.Reused, s.LearningRateFor(method));
            else
            {
                // An unfinished folder (interrupted run) is started afresh, so that wall time and memory cover one
                // uninterrupted run.
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
                Directory.CreateDirectory(dir);
                AtomicFile.WriteAllText(Path.Combine(dir, ArgumentsFile), JsonSerializer.Serialize(args));
                string log = Path.Combine(dir, "train.log");
                var outcome = runner.Run(args, log, l => observer?.OnOutputLine(method, l), cancel);
                result = outcome.ExitCode == 0 && RunResultReader.IsFinished(dir)
                    ? RunResultReader.Read(method, dir, MethodStatus.Trained, s.LearningRateFor(method))
                    : new MethodResult
                    {
                        Method = method, Status = MethodStatus.Failed, LearningRate = s.LearningRateFor(method), LogFile = log,
                        Error = outcome.Error ?? $"training exited with 0 but wrote no {RunResultReader.SummaryFile}",
                        TrainLoss = RunResultReader.ReadCurves(Path.Combine(dir, RunResultReader.MetricsFile)).Train,
                    };
            }
            results.Add(result);
            observer?.OnMethodEnd(result);
        }
        return new ComparisonReport
        {
            Settings = s,
            Results = results,
            Claims = SeedClaims.Evaluate(results),
            CreatedUtc = started,
            Machine = $"{Environment.ProcessorCount} logical cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, " +
                      $".NET {Environment.Version}, --threads {s.Threads}",
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
