using System.CommandLine;
using System.Globalization;
using PeftSharp.Peft;
using PeftSharp.Training;
using YamlDotNet.RepresentationModel;

namespace PeftSharp.Cli.Training;

/// <summary>
/// A run's settings as the CLI gathers them: the library's <see cref="TrainingOptions"/> plus the settings that are
/// turned into options only once the data is known (epochs → max_steps, warmup ratio → warmup_steps) and the loggers.
/// </summary>
internal sealed record TrainRequest(TrainingOptions Options)
{
    public double? NumTrainEpochs { get; init; }
    public double? WarmupRatio { get; init; }
    public IReadOnlyList<string> ReportTo { get; init; } = [];
}

/// <summary>
/// Every training setting once: its YAML key (transformers/PEFT names), the matching --flag, how it applies and
/// what its value is (for the defaults shown by --help). A YAML file is applied first, then flags given on the
/// command line; <see cref="Finish"/> then turns epochs and the warmup ratio into steps.
/// </summary>
internal static class TrainSettings
{
    public sealed record Setting(string Key, string Help, Type Type, Func<TrainRequest, object, TrainRequest> Apply,
        Func<TrainRequest, object?> Get, string[] Aliases);

    static Setting S(string key, string help, Type type, Func<TrainingOptions, object, TrainingOptions> apply,
        Func<TrainingOptions, object?> get, params string[] aliases) =>
        new(key, help, type, (r, v) => r with { Options = apply(r.Options, v) }, r => get(r.Options), aliases);

    static LoraConfig L(TrainingOptions o) => o.Lora;

    static string? Join<T>(IEnumerable<T>? v) => v == null ? null : string.Join(",", v);

    public static readonly Setting[] All =
    [
        S("model", "model folder, or a Hugging Face id (org/name[@revision]) in the local HF cache; without it, the embedded default model", typeof(string), (o, v) => o with { ModelDir = (string)v }, o => o.ModelDir),
        S("data", "training data: .jsonl/.json with text, prompt/completion, messages or Alpaca records", typeof(string), (o, v) => o with { DataFile = (string)v }, o => o.DataFile),
        S("eval_data", "evaluation data file (without it, eval_fraction of the training data is held out)", typeof(string), (o, v) => o with { EvalFile = (string)v }, o => o.EvalFile),
        S("eval_fraction", "fraction of the training data held out for evaluation", typeof(double), (o, v) => o with { EvalFraction = (double)v }, o => o.EvalFraction),
        S("data_format", "auto, text, prompt_completion, messages or alpaca", typeof(string), (o, v) => o with { DataFormat = (string)v }, o => o.DataFormat),
        S("train_on_prompt", "train on prompt/user tokens too (otherwise completions/assistant turns only)", typeof(bool), (o, v) => o with { TrainOnPrompt = (bool)v }, o => o.TrainOnPrompt),
        S("skip_bad_lines", "skip malformed records and report how many", typeof(bool), (o, v) => o with { SkipBadLines = (bool)v }, o => o.SkipBadLines),
        S("output_dir", "where the adapter, checkpoints and metrics go", typeof(string), (o, v) => o with { OutputDir = (string)v }, o => o.OutputDir),
        S("method", "lora, dora, qlora, qdora (LoRA/DoRA over a 4-bit base) or full", typeof(string), (o, v) => o with { Method = (string)v }, o => o.Method),
        S("bnb_4bit_quant_type", "qlora/qdora: 4-bit type of the base, nf4 or fp4", typeof(string), (o, v) => o with { BnbQuantType = (string)v }, o => o.BnbQuantType),
        S("bnb_4bit_use_double_quant", "qlora/qdora: quantize the absmax values too", typeof(bool), (o, v) => o with { BnbDoubleQuant = (bool)v }, o => o.BnbDoubleQuant),
        S("r", "LoRA rank", typeof(int), (o, v) => o with { Lora = L(o) with { R = (int)v } }, o => o.Lora.R),
        S("lora_alpha", "LoRA alpha (scaling = alpha/r, or alpha/√r with use_rslora)", typeof(double), (o, v) => o with { Lora = L(o) with { LoraAlpha = (double)v } }, o => o.Lora.LoraAlpha),
        S("lora_dropout", "dropout on the adapter branch input", typeof(double), (o, v) => o with { Lora = L(o) with { LoraDropout = (double)v } }, o => o.Lora.LoraDropout),
        S("target_modules", "all-linear, a comma list (q_proj,v_proj) or a regex", typeof(string), (o, v) => o with { Lora = Targets(L(o), (string)v) }, o => o.Lora.TargetModulesRegex ?? Join(o.Lora.TargetModules)),
        S("exclude_modules", "comma list or regex of modules to leave out", typeof(string), (o, v) => o with { Lora = Exclude(L(o), (string)v) }, o => o.Lora.ExcludeModulesRegex ?? Join(o.Lora.ExcludeModules)),
        S("layers_to_transform", "comma list of layer indices", typeof(string), (o, v) => o with { Lora = L(o) with { LayersToTransform = Ints((string)v, "layers_to_transform") } }, o => Join(o.Lora.LayersToTransform)),
        S("modules_to_save", "comma list of modules trained in full (lm_head, embed_tokens)", typeof(string), (o, v) => o with { Lora = L(o) with { ModulesToSave = List((string)v) } }, o => Join(o.Lora.ModulesToSave)),
        S("ensure_weight_tying", "with modules_to_save on a model with tied embeddings: keep them tied (one trained copy for embed_tokens and lm_head, PEFT ≥ 0.18); otherwise only the named module is replaced", typeof(bool), (o, v) => o with { Lora = L(o) with { EnsureWeightTying = (bool)v } }, o => o.Lora.EnsureWeightTying),
        S("use_rslora", "scaling alpha/√r (rank-stabilized LoRA)", typeof(bool), (o, v) => o with { Lora = L(o) with { UseRsLora = (bool)v } }, o => o.Lora.UseRsLora),
        S("init_lora_weights", "true, gaussian, false, pissa, pissa_niter_K (PiSSA: saved as a rank-2r LoRA of the original base) or loftq (qlora/qdora: the base becomes the NF4 of W − s·B·A, saved to OUTPUT_DIR/loftq-base)", typeof(string), (o, v) => o with { Lora = Init(L(o), ((string)v).ToLowerInvariant()) }, o => o.Lora.InitLoraWeights),
        S("loftq_iter", "init_lora_weights loftq: alternating quantize/SVD steps (PEFT's loftq_config.loftq_iter)", typeof(int), (o, v) => o with { Lora = L(o) with { LoftqConfig = (L(o).LoftqConfig ?? new()) with { LoftqIter = (int)v } } }, o => o.Lora.LoftqConfig?.LoftqIter ?? new LoftQConfig().LoftqIter),
        S("bias", "none, all (train every bias) or lora_only (the targeted modules' biases)", typeof(string), (o, v) => o with { Lora = L(o) with { Bias = (string)v } }, o => o.Lora.Bias),
        S("learning_rate", "peak learning rate", typeof(double), (o, v) => o with { LearningRate = (double)v }, o => o.LearningRate),
        S("lr_scheduler_type", "constant, linear or cosine", typeof(string), (o, v) => o with { LrScheduler = (string)v }, o => o.LrScheduler),
        new("warmup_steps", "linear warmup steps", typeof(int), (r, v) => r with { Options = r.Options with { WarmupSteps = (int)v }, WarmupRatio = null }, r => r.Options.WarmupSteps, []),
        new("warmup_ratio", "warmup as a fraction of max_steps (sets warmup_steps = ⌈ratio × max_steps⌉)", typeof(double), (r, v) => r with { WarmupRatio = (double)v }, r => r.WarmupRatio, []),
        S("weight_decay", "AdamW decoupled weight decay", typeof(double), (o, v) => o with { WeightDecay = (double)v }, o => o.WeightDecay),
        S("adam_beta1", "AdamW β1", typeof(double), (o, v) => o with { AdamBeta1 = (double)v }, o => o.AdamBeta1),
        S("adam_beta2", "AdamW β2", typeof(double), (o, v) => o with { AdamBeta2 = (double)v }, o => o.AdamBeta2),
        S("adam_epsilon", "AdamW ε", typeof(double), (o, v) => o with { AdamEpsilon = (double)v }, o => o.AdamEpsilon),
        S("optim", "adamw or adamw8bit", typeof(string), (o, v) => o with { Optimizer = (string)v }, o => o.Optimizer),
        S("max_grad_norm", "global gradient-norm clipping (0 = off)", typeof(double), (o, v) => o with { MaxGradNorm = (double)v }, o => o.MaxGradNorm),
        new("max_steps", "optimizer steps", typeof(int), (r, v) => r with { Options = r.Options with { MaxSteps = (int)v }, NumTrainEpochs = null }, r => r.Options.MaxSteps, []),
        new("num_train_epochs", "passes over the training data instead of max_steps (max_steps = ⌈epochs × batches per epoch / gradient_accumulation_steps⌉)", typeof(double), (r, v) => r with { NumTrainEpochs = (double)v }, r => r.NumTrainEpochs, []),
        S("per_device_train_batch_size", "sequences per micro-batch", typeof(int), (o, v) => o with { BatchSize = (int)v }, o => o.BatchSize),
        S("gradient_accumulation_steps", "micro-batches per optimizer step", typeof(int), (o, v) => o with { GradientAccumulationSteps = (int)v }, o => o.GradientAccumulationSteps),
        S("max_length", "tokens per sequence (examples are truncated, packed to this length)", typeof(int), (o, v) => o with { MaxLength = (int)v }, o => o.MaxLength, "max_seq_length"),
        S("packing", "pack several examples per sequence (false: pad)", typeof(bool), (o, v) => o with { Packing = (bool)v }, o => o.Packing),
        S("gradient_checkpointing", "recompute block activations in backward (less memory)", typeof(bool), (o, v) => o with { GradientCheckpointing = (bool)v }, o => o.GradientCheckpointing),
        S("eval_steps", "evaluate every N steps and at the end (0 = only at the end)", typeof(int), (o, v) => o with { EvalSteps = (int)v }, o => o.EvalSteps),
        S("save_steps", "checkpoint every N steps and at the end (0 = only at the end)", typeof(int), (o, v) => o with { SaveSteps = (int)v }, o => o.SaveSteps),
        S("save_total_limit", "checkpoints kept", typeof(int), (o, v) => o with { SaveTotalLimit = (int)v }, o => o.SaveTotalLimit),
        S("logging_steps", "metrics line every N steps", typeof(int), (o, v) => o with { LoggingSteps = (int)v }, o => o.LoggingSteps),
        new("report_to", "none or tensorboard (event files under output_dir/runs: tensorboard --logdir OUTPUT_DIR/runs)", typeof(string), (r, v) => r with { ReportTo = ReportTargets((string)v) }, r => r.ReportTo.Count == 0 ? "none" : string.Join(",", r.ReportTo), []),
        S("seed", "seed for init, data order and dropout", typeof(int), (o, v) => o with { Seed = (int)v }, o => o.Seed),
        S("resume", "continue from a checkpoint folder, or 'latest'", typeof(string), (o, v) => o with { ResumeFrom = (string)v }, o => o.ResumeFrom),
        S("overwrite", "start afresh in an output folder that holds an earlier run (its checkpoints, adapter and metrics are deleted)", typeof(bool), (o, v) => o with { Overwrite = (bool)v }, o => o.Overwrite),
        S("save_bf16", "save the adapter in BF16 instead of F32", typeof(bool), (o, v) => o with { SaveBf16 = (bool)v }, o => o.SaveBf16),
    ];

    /// <summary>Pairs of settings that say the same thing two ways: one layer (a YAML file, the flags) may give one.</summary>
    static readonly (string, string)[] Exclusive = [("max_steps", "num_train_epochs"), ("warmup_steps", "warmup_ratio")];

    public static readonly string[] ReportTargetNames = ["none", "tensorboard"];

    static IReadOnlyList<string> ReportTargets(string v)
    {
        var list = List(v.ToLowerInvariant());
        foreach (var t in list)
            if (!ReportTargetNames.Contains(t)) throw new PeftException($"report_to: '{t}' is not supported (expected {string.Join(" or ", ReportTargetNames)})");
        return list.Where(t => t != "none").Distinct().ToArray();
    }

    /// <summary>Applies one LoRA-related setting by key (for commands that take a subset of the flags).</summary>
    public static LoraConfig Apply(LoraConfig c, string key, string value)
    {
        var s = All.First(x => x.Key == key);
        var r = new TrainRequest(new TrainingOptions { ModelDir = "", DataFile = "", OutputDir = "", Lora = c });
        return s.Apply(r, Convert(value, s, FlagName(key))).Options.Lora;
    }

    public static string FlagName(string key) => "--" + key.Replace('_', '-');

    /// <summary>The setting a YAML key or alias names, or null.</summary>
    public static Setting? Find(string key) => All.FirstOrDefault(x => x.Key == key || x.Aliases.Contains(key));

    static LoraConfig Targets(LoraConfig c, string v)
    {
        v = v.Trim();
        if (v.Equals("all-linear", StringComparison.OrdinalIgnoreCase) || v.IndexOfAny(['*', '\\', '(', '|', '^', '$', '[']) >= 0)
            return c with { TargetModulesRegex = v, TargetModules = null };
        return c with { TargetModules = List(v), TargetModulesRegex = null };
    }

    /// <summary>init_lora_weights; "loftq" brings PEFT's default loftq_config unless loftq_iter gave one, and another
    /// init given later (a flag over a YAML file) drops a default one again.</summary>
    static LoraConfig Init(LoraConfig c, string v) => c with
    {
        InitLoraWeights = v,
        LoftqConfig = v == "loftq" ? c.LoftqConfig ?? new LoftQConfig() : c.LoftqConfig == new LoftQConfig() ? null : c.LoftqConfig,
    };

    static LoraConfig Exclude(LoraConfig c, string v) => v.IndexOfAny(['*', '\\', '(', '|', '^', '$', '[']) >= 0
        ? c with { ExcludeModulesRegex = v } : c with { ExcludeModules = List(v) };

    static string[] List(string v) => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    static int[] Ints(string v, string key) => List(v).Select(s => int.TryParse(s, out var i) ? i
        : throw new PeftException($"{key}: '{s}' is not an integer")).ToArray();

    /// <summary>Applies a YAML file of `key: value` pairs; unknown keys (with the nearest valid name) and wrong types
    /// are errors naming file and line.</summary>
    public static TrainRequest ApplyYaml(TrainRequest r, string path)
    {
        if (!File.Exists(path)) throw new PeftException($"config file '{path}' not found");
        var stream = new YamlStream();
        try { using var reader = new StreamReader(path); stream.Load(reader); }
        catch (YamlDotNet.Core.YamlException e) { throw new PeftException($"{path}:{e.Start.Line}: invalid YAML: {e.Message}"); }
        catch (InvalidOperationException e) { throw new PeftException($"{path}: invalid YAML ({e.Message})"); }   // found by fuzzing
        catch (ArgumentException e) { throw new PeftException($"{path}: invalid YAML ({e.Message})"); }           // found by fuzzing (YamlDotNet: an unsupported event)
        if (stream.Documents.Count == 0) return r;
        if (stream.Documents[0].RootNode is not YamlMappingNode map) throw new PeftException($"{path}: expected a mapping of settings (key: value)");
        var given = new List<string>();
        foreach (var (k, v) in map.Children)
        {
            // Found by fuzzing: a key that is itself a mapping or list, or a list holding a mapping, was a cast error.
            if (k is not YamlScalarNode keyNode) throw new PeftException($"{path}:{k.Start.Line}: a setting name must be a plain word, found a {k.NodeType}");
            var key = keyNode.Value ?? "";
            var s = Find(key) ?? throw new PeftException($"{path}:{k.Start.Line}: unknown setting '{key}'" +
                (SettingNames.Nearest(key, All.SelectMany(x => x.Aliases.Prepend(x.Key))) is { } near ? $"; did you mean '{near}'?" : $" (known: {string.Join(", ", All.Select(x => x.Key))})"));
            string text = v switch
            {
                YamlScalarNode sc => sc.Value ?? "",
                YamlSequenceNode seq => string.Join(",", seq.Children.Select(c => c is YamlScalarNode cs ? cs.Value
                    : throw new PeftException($"{path}:{c.Start.Line}: '{key}' must be a list of plain values"))),
                _ => throw new PeftException($"{path}:{k.Start.Line}: '{key}' must be a value or a list"),
            };
            r = s.Apply(r, Convert(text, s, $"{path}:{k.Start.Line}"));
            given.Add(s.Key);
        }
        CheckExclusive(given, path, k => k);
        return r;
    }

    static void CheckExclusive(List<string> given, string where, Func<string, string> name)
    {
        foreach (var (a, b) in Exclusive)
            if (given.Contains(a) && given.Contains(b)) throw new PeftException($"{where}: give {name(a)} or {name(b)}, not both");
    }

    public static object Convert(string text, Setting s, string where)
    {
        if (s.Type == typeof(string)) return text;
        if (s.Type == typeof(int) && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i)) return i;
        if (s.Type == typeof(double) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return d;
        if (s.Type == typeof(bool) && bool.TryParse(text, out var b)) return b;
        throw new PeftException($"{where}: '{s.Key}' expects {(s.Type == typeof(int) ? "an integer" : s.Type == typeof(double) ? "a number" : "true or false")}, got '{text}'");
    }

    /// <summary>One System.CommandLine option per setting (values as strings, converted like YAML values), each
    /// described with the library default and, where it differs, the demo's value.</summary>
    public static List<(Setting Setting, Option Option)> CreateOptions(TrainRequest? demo = null)
    {
        var defaults = new TrainRequest(new TrainingOptions { ModelDir = "", DataFile = "", OutputDir = "" });
        var list = new List<(Setting, Option)>();
        foreach (var s in All)
        {
            string help = s.Help + DefaultsText(s, defaults, demo);
            Option opt = s.Type == typeof(bool)
                ? new Option<bool?>(FlagName(s.Key)) { Description = help, Arity = ArgumentArity.ZeroOrOne }
                : new Option<string?>(FlagName(s.Key)) { Description = help };
            foreach (var a in s.Aliases) opt.Aliases.Add(FlagName(a));
            list.Add((s, opt));
        }
        return list;
    }

    static string DefaultsText(Setting s, TrainRequest defaults, TrainRequest? demo)
    {
        if (s.Key is "model" or "data") return "";
        string lib = Format(s, s.Get(defaults));
        string text = s.Key == "output_dir" ? " [default: runs/METHOD" : $" [default: {lib}";
        if (demo != null && Format(s, s.Get(demo)) is var d && d != lib && s.Key is not ("eval_data"))
            text += $"; demo: {d}";
        return text + "]";
    }

    /// <summary>A setting's value as the help shows it: learning rates as 3.0e-3, lists comma-separated.</summary>
    public static string Format(Setting s, object? v) => v switch
    {
        null => "none",
        "" => "none",
        bool b => b ? "true" : "false",
        double d when s.Key == "learning_rate" => NumberFormat.Lr(d),
        double d => NumberFormat.Number(d),
        _ => System.Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };

    public static TrainRequest ApplyFlags(TrainRequest r, ParseResult pr, List<(Setting Setting, Option Option)> options)
    {
        var given = new List<string>();
        foreach (var (s, opt) in options)
        {
            if (pr.GetResult(opt) == null) continue;
            object? value = opt is Option<bool?> bo ? pr.GetValue(bo) ?? true : pr.GetValue((Option<string?>)opt);
            if (value is string str) value = Convert(str, s, FlagName(s.Key));
            if (value != null) { r = s.Apply(r, value); given.Add(s.Key); }
        }
        CheckExclusive(given, "command line", FlagName);
        return r;
    }

    /// <summary>Turns epochs into max_steps (as transformers: ⌈epochs × max(1, ⌊batches per epoch / accumulation⌋)⌉)
    /// and the warmup ratio into warmup_steps (⌈ratio × max_steps⌉). <paramref name="batchesPerEpoch"/> counts the
    /// training micro-batches of one epoch; it is called only when epochs are given.</summary>
    public static TrainingOptions Finish(TrainRequest r, Func<TrainingOptions, int> batchesPerEpoch)
    {
        var o = r.Options;
        if (r.NumTrainEpochs is double epochs)
        {
            if (!(epochs > 0)) throw new PeftException($"num_train_epochs must be > 0, got {epochs}");
            int perEpoch = Math.Max(1, batchesPerEpoch(o) / Math.Max(1, o.GradientAccumulationSteps));
            o = o with { MaxSteps = Math.Max(1, (int)Math.Ceiling(epochs * perEpoch - 1e-9)) };
        }
        if (r.WarmupRatio is double ratio)
        {
            if (ratio is < 0 or > 1 || double.IsNaN(ratio)) throw new PeftException($"warmup_ratio must be in [0, 1], got {ratio}");
            o = o with { WarmupSteps = (int)Math.Ceiling(ratio * o.MaxSteps - 1e-9) };
        }
        return o;
    }
}
