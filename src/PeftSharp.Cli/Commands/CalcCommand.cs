using System.CommandLine;
using System.Globalization;
using PeftSharp.Cli.Planning;
using PeftSharp.Models;
using PeftSharp.Planning;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft calc`: adapter parameter counts (seed 004's square-matrix tables with --square, exact counts for a real
/// config otherwise), training-memory estimates per method, a time estimate per method from a short probe of this
/// machine's throughput (--no-time skips it), and with --budget which method fits and which to choose.
/// </summary>
internal sealed class CalcCommand : ICliCommand
{
    public Command Build()
    {
        var model = new Argument<string?>("config") { Description = "config.json or a model folder (not needed with --square)", Arity = ArgumentArity.ZeroOrOne };
        var square = new Option<bool>("--square") { Description = "seed 004's illustration: the model as one ⌈√params⌉ square matrix" };
        var paramsOpt = new Option<string?>("--params") { Description = "with --square: model sizes, e.g. 25,100,4B,7e9" };
        var rank = new Option<int?>("--rank") { Description = "rank of the memory estimate and advice (default 16); with --square the single rank (default 1)" };
        var ranks = new Option<string?>("--ranks") { Description = "ranks to count, e.g. 8,16,64 (default); with --square one table per size" };
        var targets = new Option<string>("--targets") { Description = "q_proj,v_proj | all-linear | both | a list of projections", DefaultValueFactory = _ => "both" };
        var batch = new Option<int>("--batch") { Description = "micro-batch size of the memory estimate", DefaultValueFactory = _ => 4 };
        var seq = new Option<int>("--seq") { Description = "sequence length of the memory estimate", DefaultValueFactory = _ => 256 };
        var budget = new Option<string?>("--budget") { Description = "memory budget, e.g. 24GB (10^9), 24GiB / 24G (2^30), 512MB" };
        var optimizer = new Option<string>("--optimizer") { Description = "adamw | adamw8bit", DefaultValueFactory = _ => "adamw" };
        var json = new Option<bool>("--json") { Description = "print JSON instead of tables" };
        var steps = new Option<int>("--steps") { Description = "optimizer steps the time estimate adds up", DefaultValueFactory = _ => 1000 };
        var noTime = new Option<bool>("--no-time") { Description = "skip the time estimate and its ~1 s throughput probe" };
        var threads = SharedOptions.Threads();
        var cmd = new Command("calc", "adapter parameter counts, training-memory and time estimates per method, and which method fits a budget");
        cmd.Arguments.Add(model);
        foreach (var o in new Option[] { square, paramsOpt, rank, ranks, targets, batch, seq, budget, optimizer, steps, noTime, threads, json }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            if (pr.GetValue(square))
            {
                var totals = ParseParams(pr.GetValue(paramsOpt) ?? throw new PeftException("--params: required with --square (e.g. --params 25,100,4B)"));
                var rs = pr.GetValue(ranks) is { } rl ? ParseRanks(rl, "--ranks") : [pr.GetValue(rank) ?? 1];
                if (rs.Any(r => r <= 0)) throw new PeftException("--rank: rank must be > 0");
                Console.WriteLine(pr.GetValue(json) ? CalcReport.SquareJson(totals, rs) : CalcReport.SquareText(totals, rs));
                return 0;
            }
            var path = (pr.GetValue(model) is { } m ? ModelLocator.Resolve(m) : null) ?? throw new PeftException("config: give a config.json or model folder (or --square --params ...)");
            var request = MakeRequest(pr.GetValue(ranks), pr.GetValue(rank), pr.GetValue(targets)!, pr.GetValue(batch), pr.GetValue(seq),
                pr.GetValue(optimizer)!, pr.GetValue(budget)) with { Steps = pr.GetValue(steps) };
            if (request.Steps <= 0) throw new PeftException($"--steps: must be > 0, got {request.Steps}");
            if (!File.Exists(path) && !Directory.Exists(path))
                throw new PeftException($"config: '{path}' does not exist (expected a config.json or a model folder holding one)");
            var config = ModelConfig.Load(path);
            MachineThroughput? probe = null;
            if (!pr.GetValue(noTime))
            {
                int t = Math.Max(1, pr.GetValue(threads));
                using var compute = SharedOptions.Compute(t);
                probe = ThroughputProbe.Measure(compute, config);
            }
            var packed = PeftSharp.Quantization.IntGroup.IntGroupConfig.Read(Directory.Exists(path) ? Path.Combine(path, "config.json") : path);
            var report = new CalcReport(config, path, request, probe, packed);
            Console.WriteLine(pr.GetValue(json) ? report.ToJson() : report.ToText());
            return 0;
        }));
        return cmd;
    }

    /// <summary>Validates the options into a request; every error names its option.</summary>
    public static CalcRequest MakeRequest(string? ranks, int? rank, string targets, int batch, int seq, string optimizer, string? budget)
    {
        if (batch <= 0) throw new PeftException($"--batch: must be > 0, got {batch}");
        if (seq <= 0) throw new PeftException($"--seq: must be > 0, got {seq}");
        if (rank is <= 0) throw new PeftException($"--rank: must be > 0, got {rank}");
        if (!MemoryEstimator.Optimizers.Contains(optimizer))
            throw new PeftException($"--optimizer: \"{optimizer}\" is not supported (expected {string.Join(" or ", MemoryEstimator.Optimizers)})");
        string[] sets = targets.Trim().Equals("both", StringComparison.OrdinalIgnoreCase) ? ["q_proj,v_proj", "all-linear"] : [targets.Trim()];
        foreach (var s in sets) ParameterCounter.ParseTargets(s, "--targets");
        return new CalcRequest
        {
            Ranks = ranks != null ? ParseRanks(ranks, "--ranks") : [8, 16, 64],
            TargetSets = sets,
            MemoryRank = rank ?? 16,
            MemoryTargets = sets[^1],
            Batch = batch,
            Seq = seq,
            Optimizer = optimizer,
            BudgetBytes = budget != null ? ByteSize.Parse(budget, "--budget") : null,
        };
    }

    public static int[] ParseRanks(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length == 0 || parts.Any(p => p.Length == 0))
            throw new PeftException($"{option}: expected a comma-separated list of ranks like 8,16,64, got \"{text}\"");
        return parts.Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var r) && r > 0 ? r
            : throw new PeftException($"{option}: \"{p}\" is not a positive integer rank (in \"{text}\")")).ToArray();
    }

    public static long[] ParseParams(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Any(p => p.Length == 0)) throw new PeftException($"--params: expected a comma-separated list like 25,100,4B, got \"{text}\"");
        return parts.Select(p => SquareModel.ParseCount(p, "--params")).ToArray();
    }
}
