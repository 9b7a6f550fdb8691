using System.Globalization;
using System.Text.RegularExpressions;

namespace PeftSharp.Cli.Comparison;

/// <summary>
/// What `peft compare` runs: one base model and data set, a list of methods (data, not code: the trainer decides
/// which it accepts), and the settings every method shares. Only the learning rate may differ per method
/// (<see cref="LearningRateOverrides"/>), because full fine-tuning usually diverges at a LoRA learning rate.
/// </summary>
internal sealed record ComparisonSettings
{
    public static readonly IReadOnlyList<string> DefaultMethods = ["full", "lora", "dora", "qlora", "qdora"];

    /// <summary>Learning rates used unless the user overrides them: full fine-tuning updates every weight, so it takes a
    /// smaller step than the adapters (which start from B = 0 and need a larger one).</summary>
    public static readonly IReadOnlyDictionary<string, double> DefaultLearningRateOverrides = new Dictionary<string, double> { ["full"] = 3e-4 };

    public required string ModelDir { get; init; }
    public required string DataFile { get; init; }
    public string? EvalFile { get; init; }
    public required string OutputDir { get; init; }
    /// <summary>Optional YAML of further training settings (batch size, max length, ...) given to every method.</summary>
    public string? ConfigFile { get; init; }

    public IReadOnlyList<string> Methods { get; init; } = DefaultMethods;
    /// <summary>Default sized so that the five default methods on the embedded model and demo task finish within
    /// 10 minutes on 2 cores (100 steps of each took 6 min 14 s on a 2-core machine shared with ~10 other jobs).</summary>
    public int MaxSteps { get; init; } = 150;
    public int Seed { get; init; } = 42;
    /// <summary>How many times each method runs, with seeds Seed, Seed + 1, …; above 1 the reports give mean ± sample
    /// standard deviation and call a verdict only when a difference exceeds the spread.</summary>
    public int Seeds { get; init; } = 1;
    /// <summary>The most seeds one comparison accepts (each is a full training run of every method).</summary>
    public const int MaxSeeds = 20;
    public double LearningRate { get; init; } = 3e-3;
    public string LrScheduler { get; init; } = "cosine";
    public int R { get; init; } = 16;
    public double LoraAlpha { get; init; } = 32;
    /// <summary>Eval examples for the exact-match task metric (0 = off).</summary>
    public int TaskEval { get; init; } = 32;
    public int Threads { get; init; } = Environment.ProcessorCount;
    public IReadOnlyDictionary<string, double> LearningRateOverrides { get; init; } = DefaultLearningRateOverrides;
    /// <summary>LoftQ steps of the "loftq" method (PEFT's loftq_config.loftq_iter).</summary>
    public int LoftqIter { get; init; } = 1;

    /// <summary>Methods that are a training method plus settings: "loftq" is QLoRA whose base and adapter start from
    /// LoftQ (init_lora_weights loftq). Every other name goes to `peft train --method` as it is.</summary>
    public (string TrainMethod, IReadOnlyList<string> Extra) MethodArguments(string method) => method switch
    {
        "loftq" => ("qlora", ["--init-lora-weights", "loftq", "--loftq-iter", I(LoftqIter)]),
        _ => (method, []),
    };
    /// <summary>Rerun methods that already finished.</summary>
    public bool Force { get; init; }

    public double LearningRateFor(string method) => LearningRateOverrides.TryGetValue(method, out var lr) ? lr : LearningRate;

    public string MethodDir(string method) => Path.Combine(OutputDir, method);

    /// <summary>The seeds each method runs with, in run order.</summary>
    public IReadOnlyList<int> SeedList => Enumerable.Range(Seed, Seeds).ToList();

    /// <summary>The folder of one run: the method's folder for the first seed (so a one-seed comparison's layout is
    /// unchanged and its runs are reused by a later --seeds N), "method.seed-S" beside it for the others ('.' is not
    /// allowed in method names, so these never collide with a method's folder).</summary>
    public string RunDir(string method, int seed) => seed == Seed ? MethodDir(method) : Path.Combine(OutputDir, $"{method}.seed-{I(seed)}");

    /// <summary>The `peft train` arguments for one method and the first seed.</summary>
    public IReadOnlyList<string> TrainArguments(string method) => TrainArguments(method, Seed);

    /// <summary>The `peft train` arguments for one run: identical for all methods except method, output folder and
    /// (when overridden) learning rate; identical for all seeds except seed and output folder.</summary>
    public IReadOnlyList<string> TrainArguments(string method, int seed)
    {
        var (trainMethod, extra) = MethodArguments(method);
        var args = new List<string> { "train", "--method", trainMethod, "--output-dir", RunDir(method, seed) };
        if (ConfigFile != null) args.AddRange(["--config", ConfigFile]);
        args.AddRange(["--model", ModelDir, "--data", DataFile]);
        if (EvalFile != null) args.AddRange(["--eval-data", EvalFile]);
        args.AddRange([
            "--max-steps", I(MaxSteps), "--seed", I(seed), "--learning-rate", D(LearningRateFor(method)),
            "--lr-scheduler-type", LrScheduler, "--r", I(R), "--lora-alpha", D(LoraAlpha),
            "--task-eval", I(TaskEval), "--threads", I(Threads),
        ]);
        args.AddRange(extra);
        return args;
    }

    static readonly Regex MethodName = new("^[a-z0-9][a-z0-9_-]*$", RegexOptions.CultureInvariant);

    public void Validate()
    {
        if (Methods.Count == 0) throw new PeftException("--methods: no method given (e.g. full,lora,dora,qlora,qdora)");
        foreach (var m in Methods)
            if (!MethodName.IsMatch(m)) throw new PeftException($"--methods: '{m}' is not a method name (lower-case letters, digits, '-' or '_')");
        if (Methods.Distinct().Count() != Methods.Count) throw new PeftException($"--methods: a method is listed twice ({string.Join(",", Methods)})");
        foreach (var m in LearningRateOverrides.Keys)
            if (!Methods.Contains(m) && !DefaultLearningRateOverrides.ContainsKey(m))
                throw new PeftException($"--lr-override: method '{m}' is not among --methods ({string.Join(",", Methods)})");
        if (Seeds is < 1 or > MaxSeeds) throw new PeftException($"--seeds must be between 1 and {MaxSeeds}, got {Seeds}");
        if (MaxSteps <= 0) throw new PeftException($"--max-steps must be > 0, got {MaxSteps}");
        if (LearningRate <= 0 || LearningRateOverrides.Values.Any(v => v <= 0)) throw new PeftException("learning rates must be > 0");
        if (R <= 0) throw new PeftException($"--r must be > 0, got {R}");
        if (LoftqIter < 1) throw new PeftException($"--loftq-iter must be ≥ 1, got {LoftqIter}");
        if (!File.Exists(DataFile)) throw new PeftException($"--data: file '{DataFile}' not found");
        if (EvalFile != null && !File.Exists(EvalFile)) throw new PeftException($"--eval-data: file '{EvalFile}' not found");
        if (ConfigFile != null && !File.Exists(ConfigFile)) throw new PeftException($"--config: file '{ConfigFile}' not found");
        if (!File.Exists(Path.Combine(ModelDir, "config.json"))) throw new PeftException($"--model: '{ModelDir}' has no config.json");
    }

    /// <summary>Parses "full=1e-4,qlora=3e-4" (or one pair) into learning-rate overrides.</summary>
    public static Dictionary<string, double> ParseOverrides(IEnumerable<string> pairs)
    {
        var d = new Dictionary<string, double>();
        foreach (var pair in pairs.SelectMany(p => p.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)))
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0 || !double.TryParse(pair[(eq + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                throw new PeftException($"--lr-override: expected method=learning_rate (e.g. full=1e-4), got '{pair}'");
            d[pair[..eq].Trim()] = v;
        }
        return d;
    }

    static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
    static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
