using PeftSharp.Compute;
using PeftSharp.Quantization;
using PeftSharp.Templates;
using PeftSharp.Tokenization;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Peft;

/// <summary>
/// A base <see cref="CausalLM"/> with named LoRA/DoRA adapters injected by PEFT's target rules. One adapter is active
/// at a time (or none); adapters can be added, loaded from / saved to PEFT's format, switched, unloaded, combined,
/// merged into the base weights and unmerged.
/// </summary>
public sealed partial class PeftModel : IDisposable
{
    readonly Dictionary<string, LoraConfig> _configs = new();
    readonly Dictionary<string, Dictionary<string, Parameter>> _saved = new();  // adapter → modules_to_save params
    readonly List<string> _mergedAdapters = new();
    readonly Dictionary<string, MergedModules> _mergedModules = new();   // adapter → the embedding/head it replaced

    readonly Dictionary<string, int> _inUse = new();

    /// <summary>The base model the adapters are injected into.</summary>
    public CausalLM Model { get; }

    /// <summary>Where this model's edits (initialization, merges) compute; passes bring their own context.</summary>
    public ComputeContext Compute { get; }

    /// <summary>The adapter that passes use when they name none (null: the base model).</summary>
    public string? Active { get; private set; }

    /// <summary>Every adapter's configuration by name.</summary>
    public IReadOnlyDictionary<string, LoraConfig> Configs => _configs;

    /// <summary>Adapters over <paramref name="model"/>; <paramref name="compute"/> runs initialization and merges.</summary>
    public PeftModel(CausalLM model, ComputeContext compute, HfTokenizer? tokenizer = null, ChatTemplate? chatTemplate = null)
    {
        Model = model;
        Compute = compute;
        Tokenizer = tokenizer;
        ChatTemplate = chatTemplate;
    }

    /// <summary>
    /// Loads a Hugging Face model folder (config.json, *.safetensors, tokenizer.json, the chat template if any) with no
    /// adapter yet. With <paramref name="quantize"/> the decoder projections become 4-bit while loading (QLoRA); a
    /// bitsandbytes checkpoint loads as 4-bit regardless.
    /// </summary>
    public static PeftModel Load(string modelDir, ComputeContext compute, QuantizeOptions? quantize = null)
    {
        var model = CausalLM.Load(modelDir, quantize, compute);
        try
        {
            var tokenizer = HfTokenizer.Load(modelDir);
            return new PeftModel(model, compute, tokenizer, ChatTemplateSource.TryLoad(modelDir));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The model's tokenizer (null when the model was built without one).</summary>
    public HfTokenizer? Tokenizer { get; }

    /// <summary>The model's chat template (null when it has none).</summary>
    public ChatTemplate? ChatTemplate { get; }

    /// <summary>Every adapter-carrying module (wrapping the base projection), in model order.</summary>
    internal IEnumerable<LoraLinear> LoraModules =>
        Model.Layers.SelectMany(l => l.Projections).OfType<LoraLinear>();

    /// <summary>Prefix of every tensor name in adapter_model.safetensors, as PEFT writes it ("base_model.model.").</summary>
    public const string SavePrefix = "base_model.model.";

    /// <summary>Adds a freshly initialized adapter and makes it active. Returns the targeted module names.</summary>
    /// <remarks>
    /// init_lora_weights "pissa"/"pissa_niter_K" rewrites the targeted base weights to the residual W − s·B·A (see
    /// <see cref="Pissa"/>); <see cref="Save"/> then writes the adapter as a rank-2r LoRA of the original base.
    /// init_lora_weights "loftq" replaces them by LoftQ's quantized weight Q (4-bit with <paramref name="loftqBase"/>, else dense dequant(Q)), so that Q + s·B·A approximates W.
    /// bias "all"/"lora_only" makes the model's (or the targeted modules') biases trainable while this adapter is active.
    /// </remarks>
    /// <param name="name">The adapter's name.</param>
    /// <param name="config">Its settings.</param>
    /// <param name="seed">Seeds the random inits (LoftQ itself is deterministic).</param>
    /// <param name="loftqBase">Only for init_lora_weights "loftq": the 4-bit format the targeted (dense) projections
    /// become, holding LoftQ's Q (a QLoRA/QDoRA base; nf4 only); null keeps them dense, holding dequant(Q) as PEFT's
    /// loftq_init does. The other projections are left as they are.</param>
    public IReadOnlyList<string> AddAdapter(string name, LoraConfig config, ulong seed = 0, QuantizeOptions? loftqBase = null) =>
        AddAdapter(name, config, seed, loading: false, loftqBase, null);

    /// <summary>As the public AddAdapter, collecting LoftQ's per-module errors; <c>progress</c> hears a line now and then
    /// while LoftQ or PiSSA works through the modules (minutes on a real model).</summary>
    internal IReadOnlyList<string> AddAdapter(string name, LoraConfig config, ulong seed, QuantizeOptions? loftqBase, List<LoftQModuleReport> loftqReport,
        Action<string>? progress = null) =>
        AddAdapter(name, config, seed, loading: false, loftqBase, loftqReport, progress);

    IReadOnlyList<string> AddAdapter(string name, LoraConfig config, ulong seed, bool loading, QuantizeOptions? loftqBase = null,
        List<LoftQModuleReport>? loftqReport = null, Action<string>? progress = null)
    {
        if (_configs.ContainsKey(name)) throw new PeftException($"adapter '{name}' already exists");
        config.Validate($"adapter '{name}'");
        var matcher = new TargetMatcher(config, LoraConfig.DefaultTargetsFor(Model.Config.ModelType));
        var allLinear = Model.Layers.SelectMany(l => l.Projections).Select(p => p.Name).ToList();
        foreach (var t in matcher.UnsupportedExplicitTargets(allLinear))
            throw new PeftException($"target_modules: LoRA on '{t}' is not supported; list it in modules_to_save to train it in full");
        // LoftQ swaps the targeted base projections before they are wrapped (a fresh adapter's loading does not).
        var loftq = LoftQ.IsLoftQ(config.InitLoraWeights) && !loading ? LoftQInit.Apply(Compute, Model, matcher, config, loftqBase, progress) : null;
        loftqReport?.AddRange(loftq?.Reports ?? []);
        var targeted = new List<string>();
        int moduleId = 0;
        foreach (var layer in Model.Layers)
        {
            foreach (var proj in layer.Projections.ToList())
            {
                int id = moduleId++;
                if (!matcher.IsTarget(proj.Name)) continue;
                targeted.Add(proj.Name);
                layer.Replace(proj.Name, p => p as LoraLinear ?? new LoraLinear(p, id));
            }
        }
        if (targeted.Count == 0)
            throw new PeftException($"adapter '{name}': target_modules matched no module of the model (e.g. {allLinear.FirstOrDefault()})");

        if (Pissa.IsPissa(config.InitLoraWeights) && !loading)
            foreach (var m in LoraModules.Where(m => targeted.Contains(m.Name)))
                Pissa.Check(m, matcher.RankFor(m.Name), config.InitLoraWeights);   // before any base weight is rewritten

        bool pissa = Pissa.IsPissa(config.InitLoraWeights) && !loading;
        var pissaClock = System.Diagnostics.Stopwatch.StartNew();
        int pissaDone = 0, pissaEvery = Math.Max(1, (targeted.Count + 9) / 10);   // about ten lines
        foreach (var m in LoraModules.Where(m => targeted.Contains(m.Name)))
        {
            var ad = new LoraAdapter(m.Name, m.InFeatures, m.OutFeatures, matcher.RankFor(m.Name), matcher.AlphaFor(m.Name),
                config.UseRsLora, (float)config.LoraDropout, config.UseDora);
            ulong moduleSeed = seed ^ (ulong)m.ModuleId * 0x9E3779B97F4A7C15UL;
            try
            {
                // A loaded adapter's values come from its file: PiSSA must not rewrite the base again.
                if (loftq != null) LoftQInit.SetFactors(ad, loftq.Factors[m.Name]);
                else if (pissa)
                {
                    Pissa.Initialize(Compute, m, ad, config.InitLoraWeights, moduleSeed);
                    if (++pissaDone % pissaEvery == 0 || pissaDone == targeted.Count)
                        progress?.Invoke(FormattableString.Invariant($"PiSSA {pissaDone}/{targeted.Count} modules ({pissaClock.Elapsed.TotalSeconds:0} s): {m.Name}"));
                }
                else LoraInit.Initialize(ad, Pissa.IsPissa(config.InitLoraWeights) || LoftQ.IsLoftQ(config.InitLoraWeights) ? "true" : config.InitLoraWeights, moduleSeed);
            }
            catch
            {
                ad.Dispose();
                foreach (var done in LoraModules) done.Remove(name);
                throw;
            }
            m.Add(name, ad);
            m.InitializeVariant(Compute, name);
        }
        _configs[name] = config;
        _saved[name] = CreateModulesToSave(config);
        _biases[name] = TrainableBiases(config, targeted);
        SetActive(name);
        return targeted;
    }

    /// <summary>
    /// PEFT's ModulesToSaveWrapper: a trainable float32 copy of each named module. On a tied model only the named module
    /// is replaced (the other keeps the original weight: the tie is broken), unless ensure_weight_tying keeps it: then
    /// one copy serves both, under each name the config lists.
    /// </summary>
    Dictionary<string, Parameter> CreateModulesToSave(LoraConfig config)
    {
        var result = new Dictionary<string, Parameter>();
        foreach (var m in config.ModulesToSave ?? [])
        {
            switch (m)
            {
                case "lm_head":
                    result[WeightNames.LmHead] = new Parameter(WeightNames.LmHead, (Model.Tied ? Model.Embed : Model.LmHead).ToF32());
                    break;
                case "embed_tokens":
                    result[WeightNames.Embed] = new Parameter(WeightNames.Embed, Model.Embed.ToF32());
                    break;
                default:
                    throw new PeftException($"modules_to_save: '{m}' is not supported (supported: lm_head, embed_tokens)");
            }
        }
        if (KeepsTie(config) && result.TryGetValue(WeightNames.Embed, out var e) && result.TryGetValue(WeightNames.LmHead, out var h))
        {
            h.Dispose();
            result[WeightNames.LmHead] = e;
        }
        return result;
    }

    /// <summary>True when a tied model's embeddings stay tied under this adapter's modules_to_save (ensure_weight_tying).</summary>
    bool KeepsTie(LoraConfig config) => Model.Tied && config.EnsureWeightTying;

    /// <summary>Makes <paramref name="name"/> the active adapter (null disables all adapters).</summary>
    public void SetActive(string? name)
    {
        if (name != null && !_configs.ContainsKey(name)) throw new PeftException($"no adapter named '{name}' (have: {string.Join(", ", _configs.Keys)})");
        Active = name;
        UpdateBiasTrainability();
    }

    /// <summary>
    /// The routing of a pass that uses adapter <paramref name="name"/> on every row (null: the base), with its
    /// modules_to_save replacing the embedding and LM head they name (both, when ensure_weight_tying keeps a tie).
    /// </summary>
    internal AdapterRouting Route(string? name)
    {
        if (name == null) return AdapterRouting.None;
        if (!_saved.TryGetValue(name, out var saved)) throw new PeftException($"no adapter named '{name}' (have: {string.Join(", ", _configs.Keys)})");
        saved.TryGetValue(WeightNames.Embed, out var e);
        saved.TryGetValue(WeightNames.LmHead, out var h);
        if (KeepsTie(_configs[name])) e = h = e ?? h;
        return AdapterRouting.All(name, e, h);
    }

    /// <summary>A segment of rows [start, start+count) that use adapter <paramref name="name"/> (batched serving).</summary>
    internal RowSegment Segment(int start, int count, string? name)
    {
        var w = Route(name).First;
        return new RowSegment(start, count, w.Adapter, w.Embed, w.LmHead);
    }

    /// <summary>Marks the adapter as used by a pass until the returned handle is disposed: it cannot be unloaded meanwhile.</summary>
    internal IDisposable Use(string? name)
    {
        if (name == null) return NoUse.Instance;
        lock (_inUse)
        {
            if (!_configs.ContainsKey(name)) throw new PeftException($"no adapter named '{name}' (have: {string.Join(", ", _configs.Keys)})");
            _inUse[name] = _inUse.GetValueOrDefault(name) + 1;
        }
        return new Release(this, name);
    }

    /// <summary>Passes currently using the adapter.</summary>
    public int UsersOf(string name) { lock (_inUse) return _inUse.GetValueOrDefault(name); }

    sealed class Release(PeftModel pm, string name) : IDisposable
    {
        int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 1) return;
            lock (pm._inUse) if (--pm._inUse[name] == 0) pm._inUse.Remove(name);
        }
    }

    sealed class NoUse : IDisposable
    {
        public static readonly NoUse Instance = new();
        public void Dispose() { }
    }

    /// <summary>Removes an adapter from every module.</summary>
    public void Unload(string name)
    {
        if (!_configs.ContainsKey(name)) throw new PeftException($"no adapter named '{name}'");
        if (_mergedAdapters.Contains(name)) throw new PeftException($"adapter '{name}' is merged; unmerge it first");
        int users = UsersOf(name);
        if (users > 0) throw new PeftException($"adapter '{name}' is in use by {users} running pass(es); unload it when they finish");
        foreach (var m in LoraModules) m.Remove(name);
        foreach (var p in _saved[name].Values.Distinct()) p.Dispose();
        _saved.Remove(name);
        _biases.Remove(name);
        _biasFrozen.Remove(name);
        _configs.Remove(name);
        if (Active == name) SetActive(null);
    }

    /// <summary>Trainable parameters of the active adapter (plus its modules_to_save and trainable biases) and of a
    /// fully trainable base, each once, in model order.</summary>
    internal IEnumerable<Parameter> TrainableParameters()
    {
        var route = Route(Active).First;
        var embed = route.Embed ?? Model.EmbedParam;
        if (embed != null) yield return embed;
        foreach (var l in Model.Layers)
        {
            foreach (var n in l.Norms()) if (n.Trainable) yield return n.Weight;
            foreach (var p in l.Projections)
            {
                foreach (var q in p.Parameters()) yield return q;
                if (Active != null && p is LoraLinear lora) foreach (var q in lora.AdapterParameters(Active)) yield return q;
            }
        }
        if (Model.FinalNorm.Trainable) yield return Model.FinalNorm.Weight;
        var head = route.LmHead ?? Model.LmHeadParam;
        if (head != null && head != embed) yield return head;
    }

    /// <summary>The active (or named) adapter's tensors under PEFT's saved names.</summary>
    internal IEnumerable<(string Name, Tensor Tensor)> AdapterTensors(string name)
    {
        foreach (var m in LoraModules)
        {
            if (!m.Adapters.TryGetValue(name, out var a)) continue;
            foreach (var p in a.Parameters()) yield return (SavePrefix + p.Name, p.Value);
        }
        foreach (var (key, p) in _saved[name]) yield return (SavePrefix + key, p.Value);
        foreach (var (key, t) in BiasTensors(name)) yield return (SavePrefix + key, t);
    }

    /// <summary>
    /// Writes adapter_config.json and adapter_model.safetensors (F32, or BF16 on request) atomically.
    /// A PiSSA adapter (which rewrote the base weights) is saved, by default, converted to a standard LoRA of rank 2r
    /// that applies to the ORIGINAL base (PEFT's path_initial_model_for_weight_conversion; see
    /// <see cref="PissaConversion"/>). <paramref name="convertPissa"/> = false writes the raw adapter instead, which only
    /// reproduces the model on top of the residual base weights. A LoftQ adapter is saved with init_lora_weights true
    /// (its factors are fitted), so that PEFT loads it as it is instead of running LoftQ again.
    /// </summary>
    public void Save(string dir, string? name = null, DType dtype = DType.F32, string? baseModelNameOrPath = null, bool convertPissa = true)
    {
        name ??= Active ?? throw new PeftException("no active adapter to save");
        if (!_configs.TryGetValue(name, out var config)) throw new PeftException($"no adapter named '{name}'");
        if (dtype is not (DType.F32 or DType.BF16 or DType.F16)) throw new PeftException($"adapters are saved as F32, BF16 or F16, not {dtype}");
        Directory.CreateDirectory(dir);
        var tensors = new List<(string, Tensor)>();
        var owned = new List<Tensor>();
        bool convert = convertPissa && IsPissaAdapter(name);
        if (convert) config = PissaConversion.ConvertConfig(config);
        try
        {
            foreach (var (n, t) in convert ? ConvertedPissaTensors(name, owned) : AdapterTensors(name))
            {
                if (dtype == DType.F32) { tensors.Add((n, t)); continue; }
                var c = new Tensor(dtype, t.Shape);
                unsafe { DTypeConvert.FromFloat(t.Floats, dtype, c.Data); }
                owned.Add(c);
                tensors.Add((n, c));
            }
            SafetensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }
        finally { foreach (var t in owned) t.Dispose(); }
        var cfg = LoftQConfig.SavedForm(config) with { InferenceMode = true, BaseModelNameOrPath = baseModelNameOrPath ?? config.BaseModelNameOrPath };
        AtomicFile.WriteAllText(Path.Combine(dir, "adapter_config.json"), cfg.ToJson());
    }

    /// <summary>
    /// Loads a PEFT adapter folder (adapter_config.json + adapter_model.safetensors; F32/BF16/F16) as adapter
    /// <paramref name="name"/> and makes it active. Shape or dtype mismatches are errors naming the tensor and both shapes;
    /// missing and unexpected tensors are reported in the result.
    /// </summary>
    public AdapterLoadReport LoadAdapter(string dir, string name = "default")
    {
        var config = LoraConfig.Load(Path.Combine(dir, "adapter_config.json"));
        var file = Path.Combine(dir, "adapter_model.safetensors");
        if (!File.Exists(file))
            throw new PeftException(File.Exists(Path.Combine(dir, "adapter_model.bin"))
                ? $"{dir}: only adapter_model.bin (a pickle) found; re-save the adapter with safe_serialization=True"
                : $"{dir}: adapter_model.safetensors not found");
        AddAdapter(name, config, 0, loading: true);
        using var st = SafetensorsFile.Open(file);
        var expected = AdapterTensors(name).ToDictionary(t => t.Name, t => t.Tensor);
        var missing = new List<string>(expected.Keys);
        var unexpected = new List<string>();
        foreach (var entry in st.Entries)
        {
            var key = entry.Name;
            // PEFT writes the magnitude without ".weight"; older files may carry it.
            if (!expected.ContainsKey(key) && key.EndsWith(".lora_magnitude_vector.weight")) key = key[..^".weight".Length];
            if (!expected.TryGetValue(key, out var target)) { unexpected.Add(entry.Name); continue; }
            if (!entry.Shape.AsSpan().SequenceEqual(target.Shape))
            {
                Unload(name);
                throw new PeftException($"{file}: tensor '{entry.Name}' has shape [{string.Join(", ", entry.Shape)}] but the model expects {target.ShapeString}");
            }
            if (entry.DType is not (DType.F32 or DType.BF16 or DType.F16))
            {
                Unload(name);
                throw new PeftException($"{file}: tensor '{entry.Name}' is {entry.DType}; expected F32, BF16 or F16");
            }
            using var src = st.Get(entry.Name);
            unsafe { DTypeConvert.ToFloat(src.Data, src.DType, target.Floats); }
            missing.Remove(key);
        }
        SetTrainable(name, false);
        return new AdapterLoadReport(name, config, missing, unexpected);
    }

    /// <summary>Marks the named adapter trainable (after loading, to continue training it).</summary>
    public void SetTrainable(string name, bool trainable)
    {
        foreach (var m in LoraModules) if (m.Adapters.TryGetValue(name, out var a)) a.Trainable = trainable;
        if (trainable) _biasFrozen.Remove(name); else _biasFrozen.Add(name);
        UpdateBiasTrainability();
    }

    /// <summary>
    /// Merges the active adapter into the base weights (W ← W + s·B·A, or DoRA's rescaled weight). Its modules_to_save
    /// replace the model's embedding and LM head, as PEFT's merge_and_unload does; on a tied model whose tie the adapter
    /// broke, the model becomes untied (tie_word_embeddings false in what is written).
    /// </summary>
    public void Merge(string? name = null)
    {
        name ??= Active ?? throw new PeftException("no active adapter to merge");
        if (_mergedAdapters.Contains(name)) throw new PeftException($"adapter '{name}' is already merged");
        if (!_configs.ContainsKey(name)) throw new PeftException($"no adapter named '{name}'");
        foreach (var m in LoraModules) if (m.Adapters.ContainsKey(name)) m.Merge(Compute, name);
        if (_saved[name].Count > 0) _mergedModules[name] = MergedModules.Apply(Model, Route(name).First);
        _mergedAdapters.Add(name);
    }

    /// <summary>Subtracts a merged adapter from the base weights again (the inverse of <see cref="Merge"/>).</summary>
    /// <param name="name">An adapter merged earlier; anything else is an error.</param>
    public void Unmerge(string name)
    {
        if (!_mergedAdapters.Remove(name)) throw new PeftException($"adapter '{name}' is not merged");
        foreach (var m in LoraModules) if (m.Adapters.ContainsKey(name)) m.Unmerge(Compute, name);
        if (_mergedModules.Remove(name, out var merged)) merged.Restore(Model);
    }

    /// <summary>
    /// PEFT's add_weighted_adapter for LoRA: "linear" (same rank: A = Σ √wᵢ·sᵢ·Aᵢ, B = Σ √wᵢ·Bᵢ) or "cat"
    /// (A = [A₁; A₂ …], B = [w₁s₁B₁ | w₂s₂B₂ …], exact Σ wᵢ·ΔWᵢ); the new adapter has lora_alpha = r (scaling 1).
    /// </summary>
    public void Combine(IReadOnlyList<string> adapters, IReadOnlyList<double> weights, string newName, string combination = "cat")
    {
        if (adapters.Count == 0 || adapters.Count != weights.Count) throw new PeftException("combine: give one weight per adapter");
        foreach (var a in adapters)
        {
            if (!_configs.TryGetValue(a, out var c)) throw new PeftException($"combine: no adapter named '{a}'");
            if (c.UseDora) throw new PeftException($"combine: adapter '{a}' uses DoRA; PEFT combines only plain LoRA adapters");
            if (_saved[a].Count > 0) throw new PeftException($"combine: adapter '{a}' has modules_to_save, which cannot be combined");
            if (IsPissaAdapter(a))
                throw new PeftException($"combine: adapter '{a}' is PiSSA (it rewrote the base weights); save it (as a LoRA of the original base), load it onto a fresh base, then combine");
            if (c.Bias != "none") throw new PeftException($"combine: adapter '{a}' trains biases (bias=\"{c.Bias}\"), which cannot be combined");
        }
        if (combination is not ("linear" or "cat")) throw new PeftException($"combine: combination \"{combination}\" is not supported (linear, cat)");
        var first = _configs[adapters[0]];
        var modules = LoraModules.Where(m => adapters.Any(a => m.Adapters.ContainsKey(a))).ToList();
        var ranks = modules.Select(m => adapters.Where(a => m.Adapters.ContainsKey(a)).Select(a => m.Adapters[a].Rank).ToList()).ToList();
        if (combination == "linear" && ranks.Any(rs => rs.Distinct().Count() > 1))
            throw new PeftException("combine: \"linear\" needs adapters of the same rank; use \"cat\" for different ranks");
        int newRank = combination == "cat"
            ? adapters.Sum(a => _configs[a].R)
            : first.R;
        var config = first with
        {
            R = newRank, LoraAlpha = newRank, UseRsLora = false, RankPattern = [], AlphaPattern = [], LoraDropout = first.LoraDropout,
            TargetModules = modules.Select(m => m.Name.Split('.')[^1]).Distinct().ToArray(), TargetModulesRegex = null,
            InitLoraWeights = "true", LayersToTransform = null,
        };
        if (combination == "linear" && weights.Any(w => w < 0)) throw new PeftException("combine: \"linear\" needs non-negative weights (√w is applied to A and B)");
        var moduleRanks = modules.Select(m => (m.Name, Rank: m.AddCombined(newName, adapters, weights, combination))).ToList();
        // Modules whose combined rank differs from the common one get rank_pattern/alpha_pattern entries (alpha = r → scaling 1).
        int common = moduleRanks.GroupBy(x => x.Rank).OrderByDescending(g => g.Count()).First().Key;
        var exceptions = moduleRanks.Where(x => x.Rank != common).ToList();
        config = config with
        {
            R = common, LoraAlpha = common,
            RankPattern = exceptions.Select(x => new KeyValuePair<string, int>(System.Text.RegularExpressions.Regex.Escape(x.Name), x.Rank)).ToArray(),
            AlphaPattern = exceptions.Select(x => new KeyValuePair<string, double>(System.Text.RegularExpressions.Regex.Escape(x.Name), x.Rank)).ToArray(),
        };
        _configs[newName] = config;
        _saved[newName] = new Dictionary<string, Parameter>();
        _biases[newName] = [];
        SetActive(newName);
    }

    /// <summary>Frees the modules_to_save copies and the base model.</summary>
    public void Dispose()
    {
        foreach (var d in _saved.Values) foreach (var p in d.Values.Distinct()) p.Dispose();
        Model.Dispose();
        foreach (var m in _mergedModules.Values) m.Dispose();
    }
}

/// <summary>What <see cref="PeftModel.LoadAdapter"/> loaded.</summary>
/// <param name="Name">The name the adapter was loaded as.</param>
/// <param name="Config">Its adapter_config.json.</param>
/// <param name="Missing">Tensors the model expects that the file lacks (names with <see cref="PeftModel.SavePrefix"/>).</param>
/// <param name="Unexpected">Tensors in the file the model has no place for, as named in the file.</param>
public sealed record AdapterLoadReport(string Name, LoraConfig Config, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected);
