using PeftSharp.IO;
using PeftSharp.Kernels;
using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>
/// A Llama-family causal language model: embedding → N decoder blocks → final RMSNorm → LM head.
/// Frozen weights stay in their storage dtype (views into the memory-mapped checkpoint, or owned tensors).
/// </summary>
public sealed class CausalLM : IDisposable
{
    readonly List<IDisposable> _owned = [];

    public ModelConfig Config { get; }
    public Tensor Embed { get; private set; }           // (V,C) storage dtype, or F32 when trainable
    public Parameter? EmbedParam { get; private set; }
    public DecoderLayer[] Layers { get; }
    public Norm FinalNorm { get; }
    Tensor _lmHead;                                     // (V,C); the embedding itself when tied
    Parameter? _lmHeadParam;
    public RopeTable Rope { get; }

    public Tensor LmHead => _lmHead;
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
    public static CausalLM FromTensors(ModelConfig c, Func<string, Tensor?> get, string source)
    {
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
        for (int i = 0; i < c.NumLayers; i++)
        {
            Linear Proj(string module, int outF, int inF, bool bias) =>
                new(module, Need(module + ".weight", outF, inF), bias ? Need(module + ".bias", outF) : null);
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
        var embed = Need(WeightNames.Embed, V, C);
        var head = c.TieWordEmbeddings ? embed : Need(WeightNames.LmHead, V, C);
        return new CausalLM(c, embed, layers, new Norm(WeightNames.FinalNorm, Need(WeightNames.FinalNorm, C)), head);
    }

    /// <summary>Loads config.json and the safetensors weights of a Hugging Face model folder (memory-mapped).</summary>
    public static CausalLM Load(string dir)
    {
        if (!Directory.Exists(dir)) throw new PeftException($"model folder '{dir}' does not exist");
        var config = ModelConfig.Load(Path.Combine(dir, "config.json"));
        var ckpt = SafetensorsCheckpoint.OpenDirectory(dir);
        var model = FromTensors(config, name => ckpt.Contains(name) ? ckpt.Get(name) : null, dir);
        model._owned.Add(ckpt);
        return model;
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

    /// <summary>All weights by HF name, as they are now (frozen views or trainable float32 values).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedWeights()
    {
        yield return (WeightNames.Embed, Embed);
        foreach (var l in Layers)
        {
            foreach (var n in l.Norms()) yield return (n.Weight.Name, n.Weight.Value);
            foreach (var p in l.Projections)
            {
                var lin = BaseLinear(p);
                yield return (lin.Name + ".weight", lin.Weight);
                if (lin.Bias != null) yield return (lin.Name + ".bias", lin.Bias);
            }
        }
        yield return (WeightNames.FinalNorm, FinalNorm.Weight.Value);
        if (!Tied) yield return (WeightNames.LmHead, _lmHead);
    }

    /// <summary>The dense base projection under any adapter wrappers.</summary>
    public static Linear BaseLinear(ILinear l) => l switch
    {
        Linear lin => lin,
        IWrapsLinear w => BaseLinear(w.Base),
        _ => throw new InvalidOperationException($"{l.Name}: not a dense projection"),
    };

    /// <summary>Full fine-tuning: every weight becomes a float32 trainable parameter.</summary>
    public void MakeFullyTrainable()
    {
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

    Tensor? _embedBase, _lmHeadBase;

    /// <summary>
    /// modules_to_save: route the embedding (or the LM head) through a float32 parameter of its own (trained in full,
    /// saved with the adapter); null restores the base weight. With tied embeddings both names share one matrix.
    /// </summary>
    public void OverrideEmbedding(Parameter? p)
    {
        _embedBase ??= Embed;
        EmbedParam = p;
        Embed = p?.Value ?? _embedBase;
        if (Tied) _lmHead = Embed;
    }

    public void OverrideLmHead(Parameter? p)
    {
        if (Tied) { OverrideEmbedding(p); return; }
        _lmHeadBase ??= _lmHead;
        _lmHeadParam = p;
        _lmHead = p?.Value ?? _lmHeadBase;
    }

    /// <summary>Trainable parameters (full fine-tuning weights and any adapter parameters), each once.</summary>
    public IEnumerable<Parameter> TrainableParameters()
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

    /// <summary>Gradient of the LM head (the embedding's when tied), or empty when frozen.</summary>
    internal Span<float> LmHeadGradOrEmpty
    {
        get
        {
            var p = Tied ? EmbedParam : _lmHeadParam;
            return p != null ? p.Grad.Floats : Span<float>.Empty;
        }
    }

    public void Dispose()
    {
        foreach (var l in Layers) l.Dispose();
        FinalNorm.Dispose();
        foreach (var o in _owned) o.Dispose();
    }
}

/// <summary>An adapter layer wrapping a base projection (LoRA, DoRA).</summary>
public interface IWrapsLinear : ILinear
{
    ILinear Base { get; }
}
