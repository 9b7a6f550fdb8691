using System.CommandLine;
using System.Globalization;
using PeftSharp.Peft;
using PeftSharp.Training;
using YamlDotNet.RepresentationModel;

namespace PeftSharp.Cli.Training;

/// <summary>
/// Every training setting once: its YAML key (transformers/PEFT names), the matching --flag, and how it applies to
/// <see cref="TrainingOptions"/>. A YAML file is applied first, then flags given on the command line.
/// </summary>
internal static class TrainSettings
{
    public sealed record Setting(string Key, string Help, Type Type, Func<TrainingOptions, object, TrainingOptions> Apply);

    static LoraConfig L(TrainingOptions o) => o.Lora;

    public static readonly Setting[] All =
    [
        new("model", "Hugging Face model folder (default: the embedded demo model)", typeof(string), (o, v) => o with { ModelDir = (string)v }),
        new("data", "training data: .jsonl/.json with text, prompt/completion, messages or Alpaca records", typeof(string), (o, v) => o with { DataFile = (string)v }),
        new("eval_data", "evaluation data file (default: hold out eval_fraction of the training data)", typeof(string), (o, v) => o with { EvalFile = (string)v }),
        new("eval_fraction", "fraction of the training data held out for evaluation", typeof(double), (o, v) => o with { EvalFraction = (double)v }),
        new("data_format", "auto, text, prompt_completion, messages or alpaca", typeof(string), (o, v) => o with { DataFormat = (string)v }),
        new("train_on_prompt", "train on prompt/user tokens too (default: completions/assistant turns only)", typeof(bool), (o, v) => o with { TrainOnPrompt = (bool)v }),
        new("skip_bad_lines", "skip malformed records and report how many", typeof(bool), (o, v) => o with { SkipBadLines = (bool)v }),
        new("output_dir", "where the adapter, checkpoints and metrics go", typeof(string), (o, v) => o with { OutputDir = (string)v }),
        new("method", "lora, dora, qlora, qdora (LoRA/DoRA over a 4-bit base) or full", typeof(string), (o, v) => o with { Method = (string)v }),
        new("bnb_4bit_quant_type", "qlora/qdora: 4-bit type of the base, nf4 (default) or fp4", typeof(string), (o, v) => o with { BnbQuantType = (string)v }),
        new("bnb_4bit_use_double_quant", "qlora/qdora: quantize the absmax values too (default true)", typeof(bool), (o, v) => o with { BnbDoubleQuant = (bool)v }),
        new("r", "LoRA rank", typeof(int), (o, v) => o with { Lora = L(o) with { R = (int)v } }),
        new("lora_alpha", "LoRA alpha (scaling = alpha/r, or alpha/√r with use_rslora)", typeof(double), (o, v) => o with { Lora = L(o) with { LoraAlpha = (double)v } }),
        new("lora_dropout", "dropout on the adapter branch input", typeof(double), (o, v) => o with { Lora = L(o) with { LoraDropout = (double)v } }),
        new("target_modules", "all-linear, a comma list (q_proj,v_proj) or a regex", typeof(string), (o, v) => o with { Lora = Targets(L(o), (string)v) }),
        new("exclude_modules", "comma list or regex of modules to leave out", typeof(string), (o, v) => o with { Lora = Exclude(L(o), (string)v) }),
        new("layers_to_transform", "comma list of layer indices", typeof(string), (o, v) => o with { Lora = L(o) with { LayersToTransform = Ints((string)v, "layers_to_transform") } }),
        new("modules_to_save", "comma list of modules trained in full (lm_head, embed_tokens)", typeof(string), (o, v) => o with { Lora = L(o) with { ModulesToSave = List((string)v) } }),
        new("use_rslora", "scaling alpha/√r (rank-stabilized LoRA)", typeof(bool), (o, v) => o with { Lora = L(o) with { UseRsLora = (bool)v } }),
        new("init_lora_weights", "true (PEFT default), gaussian, false, pissa or pissa_niter_K (PiSSA: saved as a rank-2r LoRA of the original base)", typeof(string), (o, v) => o with { Lora = L(o) with { InitLoraWeights = ((string)v).ToLowerInvariant() } }),
        new("bias", "none (PEFT default), all (train every bias) or lora_only (the targeted modules' biases)", typeof(string), (o, v) => o with { Lora = L(o) with { Bias = (string)v } }),
        new("learning_rate", "peak learning rate", typeof(double), (o, v) => o with { LearningRate = (double)v }),
        new("lr_scheduler_type", "constant, linear or cosine", typeof(string), (o, v) => o with { LrScheduler = (string)v }),
        new("warmup_steps", "linear warmup steps", typeof(int), (o, v) => o with { WarmupSteps = (int)v }),
        new("weight_decay", "AdamW decoupled weight decay", typeof(double), (o, v) => o with { WeightDecay = (double)v }),
        new("adam_beta1", "AdamW β1", typeof(double), (o, v) => o with { AdamBeta1 = (double)v }),
        new("adam_beta2", "AdamW β2", typeof(double), (o, v) => o with { AdamBeta2 = (double)v }),
        new("adam_epsilon", "AdamW ε", typeof(double), (o, v) => o with { AdamEpsilon = (double)v }),
        new("optim", "adamw or adamw8bit", typeof(string), (o, v) => o with { Optimizer = (string)v }),
        new("max_grad_norm", "global gradient-norm clipping (0 = off)", typeof(double), (o, v) => o with { MaxGradNorm = (double)v }),
        new("max_steps", "optimizer steps", typeof(int), (o, v) => o with { MaxSteps = (int)v }),
        new("per_device_train_batch_size", "sequences per micro-batch", typeof(int), (o, v) => o with { BatchSize = (int)v }),
        new("gradient_accumulation_steps", "micro-batches per optimizer step", typeof(int), (o, v) => o with { GradientAccumulationSteps = (int)v }),
        new("max_length", "tokens per sequence (examples are truncated, packed to this length)", typeof(int), (o, v) => o with { MaxLength = (int)v }),
        new("packing", "pack several examples per sequence (false: pad)", typeof(bool), (o, v) => o with { Packing = (bool)v }),
        new("gradient_checkpointing", "recompute block activations in backward (less memory)", typeof(bool), (o, v) => o with { GradientCheckpointing = (bool)v }),
        new("eval_steps", "evaluate every N steps and at the end (0 = only at the end)", typeof(int), (o, v) => o with { EvalSteps = (int)v }),
        new("save_steps", "checkpoint every N steps and at the end (0 = only at the end)", typeof(int), (o, v) => o with { SaveSteps = (int)v }),
        new("save_total_limit", "checkpoints kept", typeof(int), (o, v) => o with { SaveTotalLimit = (int)v }),
        new("logging_steps", "metrics line every N steps", typeof(int), (o, v) => o with { LoggingSteps = (int)v }),
        new("seed", "seed for init, data order and dropout", typeof(int), (o, v) => o with { Seed = (int)v }),
        new("resume", "continue from a checkpoint folder, or 'latest'", typeof(string), (o, v) => o with { ResumeFrom = (string)v }),
        new("overwrite", "start afresh in an output folder that holds an earlier run (its checkpoints, adapter and metrics are deleted)", typeof(bool), (o, v) => o with { Overwrite = (bool)v }),
        new("save_bf16", "save the adapter in BF16 (default F32)", typeof(bool), (o, v) => o with { SaveBf16 = (bool)v }),
    ];

    /// <summary>Applies one LoRA-related setting by key (for commands that take a subset of the flags).</summary>
    public static PeftSharp.Peft.LoraConfig Apply(PeftSharp.Peft.LoraConfig c, string key, string value)
    {
        var s = All.First(x => x.Key == key);
        var o = new TrainingOptions { ModelDir = "", DataFile = "", OutputDir = "", Lora = c };
        return s.Apply(o, Convert(value, s, FlagName(key))).Lora;
    }

    public static string FlagName(string key) => "--" + key.Replace('_', '-');

    static LoraConfig Targets(LoraConfig c, string v)
    {
        v = v.Trim();
        if (v.Equals("all-linear", StringComparison.OrdinalIgnoreCase) || v.IndexOfAny(['*', '\\', '(', '|', '^', '$', '[']) >= 0)
            return c with { TargetModulesRegex = v, TargetModules = null };
        return c with { TargetModules = List(v), TargetModulesRegex = null };
    }

    static LoraConfig Exclude(LoraConfig c, string v) => v.IndexOfAny(['*', '\\', '(', '|', '^', '$', '[']) >= 0
        ? c with { ExcludeModulesRegex = v } : c with { ExcludeModules = List(v) };

    static string[] List(string v) => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    static int[] Ints(string v, string key) => List(v).Select(s => int.TryParse(s, out var i) ? i
        : throw new PeftException($"{key}: '{s}' is not an integer")).ToArray();

    /// <summary>Applies a YAML file of `key: value` pairs; unknown keys and wrong types are errors naming file and key.</summary>
    public static TrainingOptions ApplyYaml(TrainingOptions o, string path)
    {
        if (!File.Exists(path)) throw new PeftException($"config file '{path}' not found");
        var stream = new YamlStream();
        try { using var r = new StreamReader(path); stream.Load(r); }
        catch (YamlDotNet.Core.YamlException e) { throw new PeftException($"{path}:{e.Start.Line}: invalid YAML: {e.Message}"); }
        catch (InvalidOperationException e) { throw new PeftException($"{path}: invalid YAML ({e.Message})"); }   // found by fuzzing
        if (stream.Documents.Count == 0) return o;
        if (stream.Documents[0].RootNode is not YamlMappingNode map) throw new PeftException($"{path}: expected a mapping of settings (key: value)");
        foreach (var (k, v) in map.Children)
        {
            // Found by fuzzing: a key that is itself a mapping or list, or a list holding a mapping, was a cast error.
            if (k is not YamlScalarNode keyNode) throw new PeftException($"{path}:{k.Start.Line}: a setting name must be a plain word, found a {k.NodeType}");
            var key = keyNode.Value ?? "";
            var s = All.FirstOrDefault(x => x.Key == key)
                ?? throw new PeftException($"{path}:{k.Start.Line}: unknown setting '{key}' (known: {string.Join(", ", All.Select(x => x.Key))})");
            string text = v switch
            {
                YamlScalarNode sc => sc.Value ?? "",
                YamlSequenceNode seq => string.Join(",", seq.Children.Select(c => c is YamlScalarNode cs ? cs.Value
                    : throw new PeftException($"{path}:{c.Start.Line}: '{key}' must be a list of plain values"))),
                _ => throw new PeftException($"{path}:{k.Start.Line}: '{key}' must be a value or a list"),
            };
            o = s.Apply(o, Convert(text, s, $"{path}:{k.Start.Line}"));
        }
        return o;
    }

    public static object Convert(string text, Setting s, string where)
    {
        if (s.Type == typeof(string)) return text;
        if (s.Type == typeof(int) && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i)) return i;
        if (s.Type == typeof(double) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return d;
        if (s.Type == typeof(bool) && bool.TryParse(text, out var b)) return b;
        throw new PeftException($"{where}: '{s.Key}' expects {(s.Type == typeof(int) ? "an integer" : s.Type == typeof(double) ? "a number" : "true or false")}, got '{text}'");
    }

    /// <summary>One System.CommandLine option per setting (values as strings, converted like YAML values).</summary>
    public static List<(Setting Setting, Option Option)> CreateOptions()
    {
        var list = new List<(Setting, Option)>();
        foreach (var s in All)
        {
            Option opt = s.Type == typeof(bool)
                ? new Option<bool?>(FlagName(s.Key)) { Description = s.Help, Arity = ArgumentArity.ZeroOrOne }
                : new Option<string?>(FlagName(s.Key)) { Description = s.Help };
            list.Add((s, opt));
        }
        return list;
    }

    public static TrainingOptions ApplyFlags(TrainingOptions o, ParseResult pr, List<(Setting Setting, Option Option)> options)
    {
        foreach (var (s, opt) in options)
        {
            if (pr.GetResult(opt) == null) continue;
            object? value = opt is Option<bool?> bo ? pr.GetValue(bo) ?? true : pr.GetValue((Option<string?>)opt);
            if (value is string str) value = Convert(str, s, FlagName(s.Key));
            if (value != null) o = s.Apply(o, value);
        }
        return o;
    }
}
