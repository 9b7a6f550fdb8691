using PeftSharp.Compute;
using PeftSharp.IO;
using PeftSharp.Kernels;
using PeftSharp.Nn;
using PeftSharp.Quantization;
using PeftSharp.Quantization.IntGroup;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>
/// A Llama-family causal language model: embedding → N decoder blocks → final RMSNorm → LM head.
/// Frozen weights stay in their storage dtype (views into the memory-mapped checkpoint, or owned tensors).
/// </summary>
public sealed partial class CausalLM : IDisposable
{
    readonly List<IDisposable> _owned = [];

    /// <summary>The architecture, as read from config.json.</summary>
    public ModelConfig Config { get; }
    internal Tensor Embed { get; private set; }           // (V,C) storage dtype, or F32 when trainable
    internal Parameter? EmbedParam { get; private set; }
    internal DecoderLayer[] Layers { get; }
    internal Norm FinalNorm { get; }
    Tensor _lmHead;                                     // (V,C); the embedding itself when tied
    Parameter? _lmHeadParam;
    internal RopeTable Rope { get; }

    /// <summary>The RoPE table of a forward over <paramref name="positions"/>: LongRoPE picks its factor set from the
    /// largest position (transformers: max(position_ids) + 1 against the original context length).</summary>
    internal RopeTable RopeFor(ReadOnlySpan<int> positions)
    {
        if (Rope.FactorSwitchLength is null || positions.IsEmpty) return Rope;
        int max = 0;
        foreach (int p in positions) max = Math.Max(max, p);
        return Rope.ForLength(max + 1);
    }

    internal Tensor LmHead => _lmHead;
    /// <summary>True when the LM head is the embedding matrix (`tie_word_embeddings`).</summary>
    public bool Tied => Config.TieWordEmbeddings;

    CausalLM(ModelConfig config, Tensor embed, DecoderLayer[] layers, Norm finalNorm, Tensor lmHead)
    {
        Config = config;
        Embed = embed;
        Layers = layers;
        FinalNorm = finalNorm;
        _lmHead = lmHead;
        Rope = new RopeTable(config.HeadDim, config.MaxPositions, config.RopeTheta, config.RopeScaling);
    }

    /// <summary>Builds the model from named tensors (HF names); <paramref name="get"/> throws for a missing name.</summary>
    internal static CausalLM FromTensors(ModelConfig c, Func<string, Tensor?> get, string source)
        => FromTensors(c, get, source, null, null, null);

    /// <summary>
    /// Builds the model from named tensors. Projections stored in bitsandbytes' 4-bit format (a
    /// <c>.weight.quant_state.bitsandbytes__nf4|fp4</c> key) become <see cref="QuantizedLinear"/>s; with
    /// <paramref name="quantize"/>, dense projection weights are quantized one at a time and handed to
    /// <paramref name="released"/> (so the caller can free the source tensor before the next is read). Embeddings,
    /// norms and lm_head stay in their dtype (transformers' default: lm_head is skipped, embeddings are not Linear).
    /// </summary>
    /// <remarks>With <paramref name="packed"/> (a GPTQ/AWQ config.json), projections stored as P.qweight/qzeros/scales
    /// become <see cref="IntGroupLinear"/>s; the others stay dense.</remarks>
    internal static CausalLM FromTensors(ModelConfig c, Func<string, Tensor?> get, string source, QuantizeOptions? quantize,
        Action<string, Tensor>? released, ComputeContext? compute, IntGroupConfig? packed = null)
    {
        if (quantize != null && compute == null) throw new ArgumentException("load-time quantization needs a compute context", nameof(compute));
        Tensor Need(string name, params int[] shape)
        {
            var t = get(name) ?? throw new PeftException($"{source}: missing tensor '{name}' (expected shape [{string.Join(", ", shape)}])");
            if (!t.Shape.AsSpan().SequenceEqual(shape))
                throw new PeftException($"{source}: tensor '{name}' has shape {t.ShapeString}, expected [{string.Join(", ", shape)}]");
            if (t.DType is not (DType.F32 or DType.BF16 or DType.F16))
                throw new PeftException($"{source}: tensor '{name}' is {t.DType}; expected F32, BF16 or F16");
            return t;
        }
        int C = c.HiddenSize, D = c.HeadDim, F = c.IntermediateSize, V = c.VocabSize;
        int qd = c.NumHeads * D, kvd = c.NumKvHeads * D;
        var layers = new DecoderLayer[c.NumLayers];
        var built = new List<IDisposable>();
        int preQuantized = 0, quantizedNow = 0, packedCount = 0;
        try
        {
            for (int i = 0; i < c.NumLayers; i++)
            {
                IFrozenProjection Proj(string module, int outF, int inF, bool bias)
                {
                    var b = bias ? Need(module + ".bias", outF) : null;
                    if (BnbQuantState.IsQuantized(module, get))
                    {
                        var q = BnbQuantState.FromTensors(module, get, source);
                        if (q.Shape.Length != 2 || q.Shape[0] != outF || q.Shape[1] != inF)
                        {
                            q.Dispose();
                            throw new PeftException($"{source}: tensor '{module}.weight' has quant_state shape [{string.Join(", ", q.Shape)}], expected [{outF}, {inF}]");
                        }
                        preQuantized++;
                        // the packed codes were copied: give the mapped pages back as for load-time quantization
                        released?.Invoke(module + ".weight", get(module + ".weight")!);
                        var pl = new QuantizedLinear(module, q, b);
                        built.Add(pl);
                        return pl;
                    }
                    if (IntGroupTensors.IsQuantized(module, get))
                    {
                        if (packed == null)
                            throw new PeftException($"{source}: tensor '{module}.qweight' is a GPTQ/AWQ packed weight, but config.json has no quantization_config saying how it is packed");
                        var pw = IntGroupTensors.Read(module, get, source, packed, outF, inF);
                        foreach (var t in new[] { "qweight", "qzeros", "scales", "g_idx" })
                            if (get(module + "." + t) is { } copied) released?.Invoke(module + "." + t, copied);   // copied: give the pages back
                        packedCount++;
                        var il = new IntGroupLinear(module, pw, b);
                        built.Add(il);
                        return il;
                    }
                    var w = Need(module + ".weight", outF, inF);
                    if (quantize == null) return new Linear(module, w, b);
                    var qw = Quantized4Bit.Quantize(compute!, w, quantize.Type, quantize.BlockSize, quantize.DoubleQuant, module + ".weight");
                    released?.Invoke(module + ".weight", w);
                    quantizedNow++;
                    var ql = new QuantizedLinear(module, qw, b);
                    built.Add(ql);
                    return ql;
                }
                if (c.FusedProjections)
                {
                    layers[i] = new DecoderLayer(i,
                        new Norm(WeightNames.InputNorm(i), Need(WeightNames.InputNorm(i), C)),
                        new Norm(WeightNames.PostNorm(i), Need(WeightNames.PostNorm(i), C)),
                        Proj(WeightNames.Attn(i, WeightNames.FusedQkv), qd + 2 * kvd, C, false),
                        Proj(WeightNames.Attn(i, "o_proj"), C, qd, false),
                        Proj(WeightNames.Mlp(i, WeightNames.FusedGateUp), 2 * F, C, false),
                        Proj(WeightNames.Mlp(i, "down_proj"), C, F, false));
                    continue;
                }
                layers[i] = new DecoderLayer(i,
                    new Norm(WeightNames.InputNorm(i), Need(WeightNames.InputNorm(i), C)),
                    new Norm(WeightNames.PostNorm(i), Need(WeightNames.PostNorm(i), C)),
                    c.QkNorm ? new Norm(WeightNames.QNorm(i), Need(WeightNames.QNorm(i), D)) : null,
                    c.QkNorm ? new Norm(WeightNames.KNorm(i), Need(WeightNames.KNorm(i), D)) : null,
                    Proj(WeightNames.Attn(i, "q_proj"), qd, C, c.QkvBias),
                    Proj(WeightNames.Attn(i, "k_proj"), kvd, C, c.QkvBias),
                    Proj(WeightNames.Attn(i, "v_proj"), kvd, C, c.QkvBias),
                    Proj(WeightNames.Attn(i, "o_proj"), C, qd, c.OutputBias),
                    Proj(WeightNames.Mlp(i, "gate_proj"), F, C, c.MlpBias),
                    Proj(WeightNames.Mlp(i, "up_proj"), F, C, c.MlpBias),
                    Proj(WeightNames.Mlp(i, "down_proj"), C, F, c.MlpBias));
            }
        }
        catch
        {
            foreach (var d in built) d.Dispose();
            throw;
        }
        if (packed != null && packedCount == 0)
        {
            foreach (var d in built) d.Dispose();
            throw new PeftException($"{Path.Combine(source, "config.json")}: quantization_config.quant_method is \"{packed.Method}\", but no projection is " +
                $"stored packed (no tensor '{layers[0].Projections.First().Name}.qweight' or any other *.qweight)");
        }
        var embed = Need(WeightNames.Embed, V, C);
        var head = c.TieWordEmbeddings ? embed : Need(WeightNames.LmHead, V, C);
        var model = new CausalLM(c, embed, layers, new Norm(WeightNames.FinalNorm, Need(WeightNames.FinalNorm, C)), head);
        if (preQuantized + quantizedNow > 0)
        {
            var first = model.QuantizedProjections().First().Weight;
            model.Quantization = new QuantizationInfo(
                new QuantizeOptions(first.QuantType, first.DoubleQuant, first.BlockSize), preQuantized > 0,
                preQuantized + quantizedNow, layers.Sum(l => l.Projections.Count()) - preQuantized - quantizedNow,
                UnquantizedModuleKinds(model));
        }
        if (packedCount > 0)
        {
            var pl = model.PackedProjections().ToList();
            double bits = 8.0 * pl.Sum(p => packed!.CheckpointBytes(p.OutFeatures, p.InFeatures)) / pl.Sum(p => (double)p.Weight.ElementCount);
            model.GroupQuantization = new GroupQuantizationInfo(packed!.Method, packed.Bits, packed.GroupSize, packed.DescAct, packed.Sym,
                packed.FormatName, packedCount, layers.Sum(l => l.Projections.Count()) - packedCount, bits, pl.Count(p => p.Weight.Permuted),
                UnquantizedModuleKinds(model));
        }
        return model;
    }

    static string[] UnquantizedModuleKinds(CausalLM m)
    {
        var kinds = new List<string> { "embed_tokens" };
        if (!m.Tied) kinds.Add("lm_head");
        kinds.Add("norms (input_layernorm, post_attention_layernorm, norm" + (m.Config.QkNorm ? ", q_norm, k_norm" : "") + ")");
        var denseProj = m.Layers.SelectMany(l => l.Projections).Where(p => BaseProjection(p) is Linear)
            .Select(p => p.Name.Split('.')[^1]).Distinct().ToList();
        if (denseProj.Count > 0) kinds.Add(string.Join(", ", denseProj) + " (dense in the checkpoint)");
        return kinds.ToArray();
    }

    /// <summary>How the projections are quantized (null: a dense model).</summary>
    public QuantizationInfo? Quantization { get; private set; }

    /// <summary>How GPTQ/AWQ projections are packed (null: none are).</summary>
    public GroupQuantizationInfo? GroupQuantization { get; private set; }

    /// <summary>The GPTQ/AWQ projections, in model order.</summary>
    internal IEnumerable<IntGroupLinear> PackedProjections() =>
        Layers.SelectMany(l => l.Projections).Select(BaseProjection).OfType<IntGroupLinear>();

    /// <summary>The 4-bit projections, in model order.</summary>
    internal IEnumerable<QuantizedLinear> QuantizedProjections() =>
        Layers.SelectMany(l => l.Projections).Select(BaseProjection).OfType<QuantizedLinear>();

    /// <summary>Loads config.json and the safetensors weights of a Hugging Face model folder (memory-mapped).</summary>
    public static CausalLM Load(string dir) => Load(dir, null, null);

    /// <summary>
    /// Loads a model folder; with <paramref name="quantize"/> the decoder projections are quantized to 4 bits while
    /// loading, one tensor at a time (each source tensor's pages are released after it is quantized, so peak memory is
    /// about the 4-bit model plus one tensor). A checkpoint already quantized by bitsandbytes loads as 4-bit whatever
    /// <paramref name="quantize"/> says.
    /// </summary>
    public static CausalLM Load(string dir, QuantizeOptions? quantize, ComputeContext? compute)
    {
        if (IO.Gguf.GgufModelLoader.IsGguf(dir))
        {
            var (gguf, owned) = IO.Gguf.GgufModelLoader.Load(dir, quantize, compute);
            gguf._owned.AddRange(owned);
            return gguf;
        }
        if (!Directory.Exists(dir)) throw new PeftException($"model folder '{dir}' does not exist");
        var config = ModelConfig.Load(Path.Combine(dir, "config.json"));
        var packed = CheckQuantizationConfig(Path.Combine(dir, "config.json"));
        var ckpt = SafetensorsCheckpoint.OpenDirectory(dir);
        try
        {
            var model = FromTensors(config, name => ckpt.Contains(name) ? ckpt.Get(name) : null, dir, quantize,
                (_, t) => MappedPages.Release(t), compute, packed);
            model._owned.Add(ckpt);
            return model;
        }
        catch
        {
            ckpt.Dispose();
            throw;
        }
    }

    /// <summary>config.json's quantization_config: GPTQ and AWQ are returned (their packing is in the config);
    /// bitsandbytes 4-bit is read from the weights' quant-state keys; anything else (8-bit LLM.int8, other methods) is
    /// refused by name instead of failing later on a tensor shape.</summary>
    static IntGroupConfig? CheckQuantizationConfig(string path)
    {
        System.Text.Json.Nodes.JsonNode? q;
        try { q = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))?["quantization_config"]; }
        catch (System.Text.Json.JsonException) { return null; }   // ModelConfig.Load has already validated the file
        if (q is not System.Text.Json.Nodes.JsonObject o) return null;
        if (IntGroupConfig.Parse(o, path) is { } packed) return packed;   // throws for an unknown quant_method
        bool Flag(string k) => o[k] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<bool>(out var b) && b;
        if (Flag("load_in_8bit") || Flag("_load_in_8bit"))
            throw new PeftException($"{path}: quantization_config has load_in_8bit (LLM.int8); only bitsandbytes 4-bit (nf4/fp4) checkpoints are supported");
        return null;
    }

    /// <summary>
    /// Random weights of the config's shape in <paramref name="dtype"/> (benchmarks, tests): N(0, 0.02) projections
    /// and embeddings, norms 1 (as HF's init), scaled so deep random models stay numerically tame.
    /// </summary>
    public static CausalLM CreateRandom(ModelConfig c, DType dtype, ulong seed)
    {
        var tensors = RandomWeights.Create(c, dtype, seed);
        var model = FromTensors(c, name => tensors.TryGetValue(name, out var t) ? t : null, "random weights");
        model._owned.AddRange(tensors.Values);
        return model;
    }

    /// <summary>
    /// Random weights (as <see cref="CreateRandom"/>, each tensor from its own seed) with the projections quantized to
    /// 4 bits as they are generated: only one dense projection exists at a time (benchmarks of QLoRA at full size).
    /// </summary>
    public static CausalLM CreateRandomQuantized(ModelConfig c, DType dtype, ulong seed, QuantizeOptions quantize, ComputeContext compute)
    {
        var specs = RandomWeights.Specs(c).ToDictionary(s => s.Name);
        var kept = new Dictionary<string, Tensor>();
        Tensor? Get(string name)
        {
            if (kept.TryGetValue(name, out var t)) return t;
            if (!specs.TryGetValue(name, out var s)) return null;
            return kept[name] = RandomWeights.CreateOne(s, dtype, seed);
        }
        CausalLM model;
        try
        {
            model = FromTensors(c, Get, "random weights", quantize, (name, t) => { kept.Remove(name); t.Dispose(); }, compute);
        }
        catch
        {
            foreach (var t in kept.Values) t.Dispose();
            throw;
        }
        model._owned.AddRange(kept.Values);
        return model;
    }

    /// <summary>All dense weights by HF name, as they are now (frozen views or trainable float32 values); 4-bit projection
    /// weights are not tensors: see <see cref="QuantizedProjections"/>.</summary>
    internal IEnumerable<(string Name, Tensor Tensor)> NamedWeights()
    {
        yield return (WeightNames.Embed, Embed);
        foreach (var l in Layers)
        {
            foreach (var n in l.Norms()) yield return (n.Weight.Name, n.Weight.Value);
            foreach (var p in l.Projections)
            {
                switch (BaseProjection(p))
                {
                    case Linear lin:
                        yield return (lin.Name + ".weight", lin.Weight);
                        if (lin.Bias != null) yield return (lin.Name + ".bias", lin.Bias);
                        break;
                    case QuantizedLinear q:
                        if (q.Bias != null) yield return (q.Name + ".bias", q.Bias);
                        break;
                    case IntGroupLinear q:
                        if (q.Bias != null) yield return (q.Name + ".bias", q.Bias);
                        break;
                }
            }
        }
        yield return (WeightNames.FinalNorm, FinalNorm.Weight.Value);
        if (!Tied) yield return (WeightNames.LmHead, _lmHead);
    }

    /// <summary>The dense base projection under any adapter wrappers.</summary>
    internal static Linear BaseLinear(ILinear l) => BaseProjection(l) as Linear
        ?? throw new PeftException($"{l.Name}: the base weight is 4-bit quantized; this needs a dense (BF16/F16/F32) base");

    /// <summary>The frozen base projection (dense or 4-bit) under any adapter wrappers.</summary>
    internal static IFrozenProjection BaseProjection(ILinear l) => l switch
    {
        IFrozenProjection f => f,
        IWrapsLinear w => BaseProjection(w.Base),
        _ => throw new InvalidOperationException($"{l.Name}: not a frozen projection"),
    };

    /// <summary>Parameter count of every base weight (dense tensors and 4-bit projections).</summary>
    public long BaseParameterCount => NamedWeights().Sum(w => w.Tensor.ElementCount)
        + QuantizedProjections().Sum(q => q.Weight.ElementCount) + PackedProjections().Sum(q => q.Weight.ElementCount);

    /// <summary>Bytes of the frozen base as stored (4-bit projections at their packed size), excluding <paramref name="exclude"/>.</summary>
    internal long BaseBytes(ISet<Tensor>? exclude = null) =>
        NamedWeights().Where(w => exclude == null || !exclude.Contains(w.Tensor)).Sum(w => w.Tensor.ByteLength)
        + QuantizedProjections().Sum(q => q.StorageBytes) + PackedProjections().Sum(q => q.StorageBytes);

    /// <summary>Full fine-tuning: every weight becomes a float32 trainable parameter.</summary>
    public void MakeFullyTrainable()
    {
        if (Quantization != null) throw new PeftException("full fine-tuning needs a dense base; a 4-bit model trains with qlora or qdora");
        if (GroupQuantization != null)
            throw new PeftException($"full fine-tuning needs a dense base; this {GroupQuantization.Method.ToUpperInvariant()} checkpoint trains with lora or dora over its packed projections");
        foreach (var l in Layers)
        {
            foreach (var n in l.Norms()) n.Trainable = true;
            foreach (var p in l.Projections) BaseLinear(p).MakeTrainable();
        }
        FinalNorm.Trainable = true;
        if (EmbedParam == null)
        {
            EmbedParam = new Parameter(WeightNames.Embed, Embed.ToF32());
            _owned.Add(EmbedParam);
            Embed = EmbedParam.Value;
            if (Tied) _lmHead = Embed;
        }
        if (!Tied && _lmHeadParam == null)
        {
            _lmHeadParam = new Parameter(WeightNames.LmHead, _lmHead.ToF32());
            _owned.Add(_lmHeadParam);
            _lmHead = _lmHeadParam.Value;
        }
    }

    /// <summary>The LM head's own float32 parameter in full fine-tuning of an untied model (null otherwise).</summary>
    internal Parameter? LmHeadParam => _lmHeadParam;

    /// <summary>The embedding a row segment reads (its modules_to_save replacement, or the model's).</summary>
    internal Tensor EmbedFor(in RowSegment s) => s.Embed?.Value ?? Embed;

    /// <summary>The parameter that receives the embedding's gradient for a row segment, or null when frozen.</summary>
    internal Parameter? EmbedGradFor(in RowSegment s) => s.Embed ?? EmbedParam;

    /// <summary>The LM head a row segment uses.</summary>
    internal Tensor LmHeadFor(in RowSegment s) => s.LmHead?.Value ?? _lmHead;

    /// <summary>The gradient of the LM head a row segment uses, or empty when it is frozen.</summary>
    internal Span<float> LmHeadGradFor(in RowSegment s)
    {
        var p = s.LmHead ?? (Tied ? EmbedParam : _lmHeadParam);
        return p != null ? p.Grad.Floats : Span<float>.Empty;
    }

    /// <summary>Trainable parameters (full fine-tuning weights and any adapter parameters), each once.</summary>
    internal IEnumerable<Parameter> TrainableParameters()
    {
        if (EmbedParam != null) yield return EmbedParam;
        foreach (var l in Layers)
        {
            foreach (var n in l.Norms()) if (n.Trainable) yield return n.Weight;
            foreach (var p in l.Projections) foreach (var q in p.Parameters()) yield return q;
        }
        if (FinalNorm.Trainable) yield return FinalNorm.Weight;
        if (_lmHeadParam != null) yield return _lmHeadParam;
    }

    /// <summary>Frees the weights this model owns and releases its views of the checkpoint.</summary>
    public void Dispose()
    {
        foreach (var l in Layers) l.Dispose();
        FinalNorm.Dispose();
        foreach (var o in _owned) o.Dispose();
    }
}

/// <summary>How a model's projections are stored in 4 bits (load-time quantization or a bitsandbytes checkpoint).</summary>
public sealed record QuantizationInfo(QuantizeOptions Options, bool PreQuantized, int QuantizedModules, int DenseProjections,
    string[] UnquantizedModules)
{
    /// <summary>One line: how many projections are 4-bit, in which format, and which modules stay unquantized.</summary>
    public override string ToString() =>
        $"{QuantizedModules} linear projections in 4-bit {Options}{(PreQuantized ? " (bitsandbytes checkpoint)" : " (quantized at load)")}; " +
        $"kept unquantized: {string.Join("; ", UnquantizedModules)}";
}
