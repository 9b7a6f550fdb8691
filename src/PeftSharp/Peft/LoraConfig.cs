using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftSharp.Peft;

/// <summary>
/// PEFT's LoraConfig: the fields this project implements, with PEFT's defaults and JSON names.
/// TargetModules is a list (exact or ".suffix" match), a regex string, "all-linear", or null (architecture default).
/// </summary>
public sealed record LoraConfig
{
    /// <summary>`r`: adapter rank, &gt; 0 (default 8); <see cref="RankPattern"/> overrides it per module.</summary>
    public int R { get; init; } = 8;
    /// <summary>`lora_alpha` (default 8): the adapter output is scaled by alpha / r (alpha / √r with
    /// <see cref="UseRsLora"/>); <see cref="AlphaPattern"/> overrides it per module.</summary>
    public double LoraAlpha { get; init; } = 8;
    /// <summary>`lora_dropout`: dropout probability on the adapter's input while training, in [0, 1) (default 0).</summary>
    public double LoraDropout { get; init; }
    /// <summary>`target_modules` given as a list: a module is targeted when its full name equals an entry or ends
    /// with "." + entry. null (and no <see cref="TargetModulesRegex"/>) = <see cref="DefaultTargets"/>.</summary>
    public IReadOnlyList<string>? TargetModules { get; init; }
    /// <summary>target_modules given as a single string: a regex for re.fullmatch, or "all-linear".</summary>
    public string? TargetModulesRegex { get; init; }
    /// <summary>`exclude_modules` given as a list (matched like <see cref="TargetModules"/>): never targeted.</summary>
    public IReadOnlyList<string>? ExcludeModules { get; init; }
    /// <summary>`exclude_modules` given as a single string: a regex for re.fullmatch; matching modules are never targeted.</summary>
    public string? ExcludeModulesRegex { get; init; }
    /// <summary>`bias`: which base-layer biases train with the adapter: "none" (default), "all" or "lora_only"
    /// (only those of targeted layers).</summary>
    public string Bias { get; init; } = "none";
    /// <summary>`use_rslora` (default false): rank-stabilized scaling alpha / √r instead of alpha / r.</summary>
    public bool UseRsLora { get; init; }
    /// <summary>`use_dora` (default false): DoRA: a trained magnitude per output feature times the
    /// normalized direction W + s·B·A.</summary>
    public bool UseDora { get; init; }
    /// <summary>`modules_to_save`: modules (e.g. lm_head) trained and saved in full instead of getting an adapter.</summary>
    public IReadOnlyList<string>? ModulesToSave { get; init; }
    /// <summary>`ensure_weight_tying` (PEFT ≥ 0.18; default false): on a model with tied input/output embeddings, an
    /// embedding named in <see cref="ModulesToSave"/> keeps the tie: one trained copy serves embed_tokens and lm_head.
    /// Without it (and in every older PEFT) only the named module is replaced and the other keeps the original weight.</summary>
    public bool EnsureWeightTying { get; init; }
    /// <summary>"true" (PEFT default: A ~ U(±1/√in), B = 0), "false", "gaussian", "pissa", "pissa_niter_K", "loftq".</summary>
    public string InitLoraWeights { get; init; } = "true";
    /// <summary>`loftq_config`: the LoftQ settings, required when <see cref="InitLoraWeights"/> is "loftq" (PEFT raises
    /// without it) and ignored otherwise (written as {}, as PEFT does).</summary>
    public LoftQConfig? LoftqConfig { get; init; }
    /// <summary>`layers_to_transform` (an int or a list): only these layer indices are targeted; needs
    /// <see cref="TargetModules"/> as a list.</summary>
    public IReadOnlyList<int>? LayersToTransform { get; init; }
    /// <summary>`layers_pattern` (the first entry when a list): the module-name segment before the layer index
    /// that <see cref="LayersToTransform"/> reads, e.g. "layers"; null = the segment before the first index.</summary>
    public string? LayersPattern { get; init; }
    /// <summary>Ordered (pattern, value) pairs: the first match in file order wins.</summary>
    public IReadOnlyList<KeyValuePair<string, int>> RankPattern { get; init; } = [];
    /// <summary>`alpha_pattern`: ordered (pattern, alpha) pairs, matched like <see cref="RankPattern"/>.</summary>
    public IReadOnlyList<KeyValuePair<string, double>> AlphaPattern { get; init; } = [];
    /// <summary>`base_model_name_or_path`: the base model the adapter was trained on, as recorded (not checked).</summary>
    public string? BaseModelNameOrPath { get; init; }
    /// <summary>`task_type` (default "CAUSAL_LM").</summary>
    public string TaskType { get; init; } = "CAUSAL_LM";
    /// <summary>`inference_mode` (default true).</summary>
    public bool InferenceMode { get; init; } = true;
    /// <summary>`revision` of the base model, as recorded.</summary>
    public string? Revision { get; init; }

    /// <summary>Targets when `target_modules` is absent: q_proj and v_proj (PEFT's default for Llama-family models).</summary>
    public static readonly string[] DefaultTargets = ["q_proj", "v_proj"];

    /// <summary>PEFT's default target_modules for a model type (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).</summary>
    public static string[] DefaultTargetsFor(string modelType) =>
        modelType == "phi3" ? ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"] : DefaultTargets;

    /// <summary>adapter_config.json: sorted keys. Keys newer PEFT introduced (exclude_modules, ensure_weight_tying; eva_config
    /// and lora_bias are never written) appear only when not at their default, because PEFT ≤ 0.13 rejects any key it does not know; an adapter that
    /// uses no newer feature therefore loads in old and new PEFT alike.</summary>
    public string ToJson()
    {
        JsonNode? List<T>(IReadOnlyList<T>? xs) => xs == null ? null : new JsonArray(xs.Select(x => JsonValue.Create(x)).ToArray<JsonNode?>());
        JsonNode? Targets() => TargetModulesRegex != null ? JsonValue.Create(TargetModulesRegex) : List(TargetModules);
        JsonNode? Exclude() => ExcludeModulesRegex != null ? JsonValue.Create(ExcludeModulesRegex) : List(ExcludeModules);
        JsonNode Init() => InitLoraWeights switch
        {
            "true" => JsonValue.Create(true),
            "false" => JsonValue.Create(false),
            var s => JsonValue.Create(s),
        };
        var rank = new JsonObject();
        foreach (var (k, v) in RankPattern) rank[k] = v;
        var alpha = new JsonObject();
        foreach (var (k, v) in AlphaPattern) alpha[k] = Number(v);
        var o = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["alpha_pattern"] = alpha,
            ["auto_mapping"] = null,
            ["base_model_name_or_path"] = BaseModelNameOrPath,
            ["bias"] = Bias,
            ["exclude_modules"] = Exclude(),
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = InferenceMode,
            ["init_lora_weights"] = Init(),
            ["layer_replication"] = null,
            ["layers_pattern"] = LayersPattern,
            ["layers_to_transform"] = List(LayersToTransform),
            ["loftq_config"] = InitLoraWeights == "loftq" && LoftqConfig != null ? LoftqConfig.ToJson() : new JsonObject(),
            ["lora_alpha"] = Number(LoraAlpha),
            ["lora_dropout"] = LoraDropout,
            ["megatron_config"] = null,
            ["megatron_core"] = "megatron.core",
            ["modules_to_save"] = List(ModulesToSave),
            ["peft_type"] = "LORA",
            ["r"] = R,
            ["rank_pattern"] = rank,
            ["revision"] = Revision,
            ["target_modules"] = Targets(),
            ["task_type"] = TaskType,
            ["use_dora"] = UseDora,
            ["use_rslora"] = UseRsLora,
        };
        if (o["exclude_modules"] == null) o.Remove("exclude_modules");
        if (EnsureWeightTying) o["ensure_weight_tying"] = true;
        var root = new JsonObject();
        foreach (var (k, v) in o) root[k] = v;
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    static JsonNode Number(double v) => v == Math.Floor(v) && Math.Abs(v) < 1e15 ? JsonValue.Create((long)v) : JsonValue.Create(v);

    /// <summary>Reads an adapter_config.json file (see <see cref="Parse"/>).</summary>
    /// <param name="path">Path of the adapter_config.json file.</param>
    public static LoraConfig Load(string path)
    {
        if (!File.Exists(path)) throw new PeftException($"{path}: adapter_config.json not found");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Reads PEFT's adapter_config.json: unknown keys ignored (as PEFT ≥ 0.14), wrong types named.</summary>
    public static LoraConfig Parse(string json, string source)
    {
        try { return ParseObject(json, source); }
        catch (ArgumentException e)
        {
            // JsonObject builds its dictionary on first use: a key written twice fails there.
            throw new PeftException($"{source}: {(e.Message.Contains("same key") ? "a key appears twice" : "malformed")} ({e.Message})");
        }
        catch (InvalidOperationException e) { throw new PeftException($"{source}: unexpected structure: {e.Message}"); }
    }

    static LoraConfig ParseObject(string json, string source)
    {
        JsonObject root;
        try { root = JsonNode.Parse(json) as JsonObject ?? throw new PeftException($"{source}: expected a JSON object"); }
        catch (JsonException e) { throw new PeftException($"{source}: invalid JSON: {e.Message}"); }

        string peftType = Str(root, "peft_type", source) ?? throw new PeftException($"{source}: missing \"peft_type\" (expected \"LORA\")");
        if (peftType != "LORA") throw new PeftException($"{source}: peft_type \"{peftType}\" is not supported (expected \"LORA\")");
        if (Bool(root, "fan_in_fan_out", source) == true)
            throw new PeftException($"{source}: fan_in_fan_out=true is for GPT-2 Conv1D weights; Llama-family models use nn.Linear");
        if (Bool(root, "lora_bias", source) == true)
            throw new PeftException($"{source}: lora_bias=true is not supported");

        var c = new LoraConfig
        {
            R = WholeNumber(Num(root, "r", source) ?? 8, "r", source),
            LoraAlpha = Num(root, "lora_alpha", source) ?? 8,
            LoraDropout = Num(root, "lora_dropout", source) ?? 0,
            Bias = Str(root, "bias", source) ?? "none",
            UseRsLora = Bool(root, "use_rslora", source) ?? false,
            UseDora = Bool(root, "use_dora", source) ?? false,
            ModulesToSave = StrList(root, "modules_to_save", source),
            EnsureWeightTying = Bool(root, "ensure_weight_tying", source) ?? false,
            LayersPattern = root["layers_pattern"] is JsonArray lp ? lp.Select(x => x!.GetValue<string>()).FirstOrDefault() : Str(root, "layers_pattern", source),
            BaseModelNameOrPath = Str(root, "base_model_name_or_path", source),
            TaskType = Str(root, "task_type", source) ?? "CAUSAL_LM",
            InferenceMode = Bool(root, "inference_mode", source) ?? true,
            Revision = Str(root, "revision", source),
        };
        c = root["target_modules"] switch
        {
            null => c,
            JsonValue v when v.TryGetValue<string>(out var s) => c with { TargetModulesRegex = s },
            JsonArray => c with { TargetModules = StrList(root, "target_modules", source) },
            _ => throw new PeftException($"{source}: \"target_modules\" must be a list of names or a regex string"),
        };
        c = root["exclude_modules"] switch
        {
            null => c,
            JsonValue v when v.TryGetValue<string>(out var s) => c with { ExcludeModulesRegex = s },
            JsonArray => c with { ExcludeModules = StrList(root, "exclude_modules", source) },
            _ => throw new PeftException($"{source}: \"exclude_modules\" must be a list of names or a regex string"),
        };
        c = root["init_lora_weights"] switch
        {
            null => c,
            JsonValue v when v.TryGetValue<bool>(out var b) => c with { InitLoraWeights = b ? "true" : "false" },
            JsonValue v when v.TryGetValue<string>(out var s) => c with { InitLoraWeights = s },
            _ => throw new PeftException($"{source}: \"init_lora_weights\" must be a bool or a string"),
        };
        // PEFT keeps loftq_config only for init_lora_weights "loftq" (otherwise it resets it to {} with a warning).
        if (c.InitLoraWeights == "loftq")
            c = root["loftq_config"] switch
            {
                null => c,
                JsonObject lq => c with { LoftqConfig = lq.Count == 0 ? null : LoftQConfig.Parse(lq, source) },
                _ => throw new PeftException($"{source}: \"loftq_config\" must be an object such as {{\"loftq_bits\": 4, \"loftq_iter\": 1}}"),
            };
        c = root["layers_to_transform"] switch
        {
            null => c,
            JsonValue v when v.TryGetValue<int>(out var i) => c with { LayersToTransform = [i] },
            JsonArray a => c with { LayersToTransform = a.Select(x => x is JsonValue xv && xv.TryGetValue<int>(out var i) ? i
                : throw new PeftException($"{source}: \"layers_to_transform\" must hold integers")).ToArray() },
            _ => throw new PeftException($"{source}: \"layers_to_transform\" must be an int or a list of ints"),
        };
        if (root["rank_pattern"] is JsonObject rp)
            c = c with { RankPattern = rp.Select(kv => new KeyValuePair<string, int>(kv.Key, WholeNumber(AsNum(kv.Value, $"rank_pattern.{kv.Key}", source), $"rank_pattern.{kv.Key}", source))).ToArray() };
        if (root["alpha_pattern"] is JsonObject ap)
            c = c with { AlphaPattern = ap.Select(kv => new KeyValuePair<string, double>(kv.Key, AsNum(kv.Value, $"alpha_pattern.{kv.Key}", source))).ToArray() };
        c.Validate(source);
        return c;
    }

    static int WholeNumber(double v, string key, string source) =>
        v == Math.Floor(v) && v is >= int.MinValue and <= int.MaxValue ? (int)v
            : throw new PeftException($"{source}: \"{key}\" must be a whole number, got {v}");

    /// <summary>Throws <see cref="PeftException"/> naming the first field outside its range (r, lora_dropout, bias,
    /// init_lora_weights, layers_to_transform with a regex target).</summary>
    /// <param name="source">Names the config in the error message (usually its path).</param>
    public void Validate(string source)
    {
        if (R <= 0) throw new PeftException($"{source}: r must be > 0, got {R}");
        if (!double.IsFinite(LoraAlpha)) throw new PeftException($"{source}: lora_alpha must be a finite number, got {LoraAlpha}");
        if (!(LoraDropout >= 0 && LoraDropout < 1)) throw new PeftException($"{source}: lora_dropout must be in [0, 1), got {LoraDropout}");
        foreach (var (k, v) in RankPattern)
            if (v <= 0) throw new PeftException($"{source}: rank_pattern[\"{k}\"] must be > 0, got {v}");
        foreach (var (k, v) in AlphaPattern)
            if (!double.IsFinite(v)) throw new PeftException($"{source}: alpha_pattern[\"{k}\"] must be a finite number, got {v}");
        TargetMatcher.CheckRegex(TargetModulesRegex, "target_modules", source);
        TargetMatcher.CheckRegex(ExcludeModulesRegex, "exclude_modules", source);
        TargetMatcher.CheckRegex(LayersPattern, "layers_pattern", source);
        foreach (var (k, _) in RankPattern) TargetMatcher.CheckRegex(k, "rank_pattern key", source);
        foreach (var (k, _) in AlphaPattern) TargetMatcher.CheckRegex(k, "alpha_pattern key", source);
        if (Bias is not ("none" or "all" or "lora_only")) throw new PeftException($"{source}: bias must be \"none\", \"all\" or \"lora_only\", got \"{Bias}\"");
        if (LayersToTransform != null && TargetModulesRegex != null)
            throw new PeftException($"{source}: layers_to_transform needs target_modules as a list, not a regex string");
        if (InitLoraWeights is not ("true" or "false" or "gaussian" or "loftq") && !Pissa.IsPissa(InitLoraWeights))
            throw new PeftException($"{source}: init_lora_weights \"{InitLoraWeights}\" is not supported (expected true, false, \"gaussian\", \"pissa\", \"pissa_niter_K\" or \"loftq\")");
        if (InitLoraWeights == "loftq")
        {
            if (LoftqConfig == null)
                throw new PeftException($"{source}: init_lora_weights \"loftq\" needs loftq_config (e.g. {{\"loftq_bits\": 4, \"loftq_iter\": 1}}); PEFT raises here too");
            LoftqConfig.Validate(source);
        }
        if (Pissa.IsPissa(InitLoraWeights)) Pissa.Niter(InitLoraWeights, source);
    }

    static string? Str(JsonObject o, string key, string src) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => throw new PeftException($"{src}: \"{key}\" must be a string"),
    };
    static bool? Bool(JsonObject o, string key, string src) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        _ => throw new PeftException($"{src}: \"{key}\" must be true or false"),
    };
    static double? Num(JsonObject o, string key, string src) => o[key] is null ? null : AsNum(o[key], key, src);
    static double AsNum(JsonNode? n, string key, string src) => n is JsonValue v && v.TryGetValue<double>(out var d) ? d
        : throw new PeftException($"{src}: \"{key}\" must be a number");
    static IReadOnlyList<string>? StrList(JsonObject o, string key, string src) => o[key] switch
    {
        null => null,
        JsonArray a => a.Select(x => x is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : throw new PeftException($"{src}: \"{key}\" must be a list of strings")).ToArray(),
        _ => throw new PeftException($"{src}: \"{key}\" must be a list of strings"),
    };
}
