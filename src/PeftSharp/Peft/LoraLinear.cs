using PeftSharp.Compute;
using PeftSharp.Nn;
using PeftSharp.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace PeftSharp.Peft;

/// <summary>
/// A base projection hosting named adapters (PEFT's lora.Linear): the base runs once over all rows of a pass, then
/// each routing segment's adapter (<see cref="LoraAdapter.Variant"/>: LoRA, DoRA …) over its own rows. Nothing a
/// forward computes is kept here: it goes to the pass, so concurrent passes may use different adapters.
/// Adding or removing adapters is safe while passes run (the table is replaced, not edited); merging is not.
/// </summary>
internal sealed unsafe partial class LoraLinear : IWrapsLinear, IDisposable
{
    readonly object _lock = new();
    volatile Dictionary<string, LoraAdapter> _adapters = new();
    readonly HashSet<string> _merged = new();
    readonly Dictionary<LoraAdapter, float[]> _mergeFactors = new();
    volatile double[]? _baseRowNormSq;                 // ‖W_i‖², W frozen → computed once (until a merge)
    long _baseGeneration;                              // bumped whenever W is rewritten (merge, PiSSA): DoRA's norm caches check it

    public ILinear Base { get; }
    public string Name => Base.Name;
    public int InFeatures => Base.InFeatures;
    public int OutFeatures => Base.OutFeatures;
    /// <summary>Index of this module in the model (decorrelates dropout masks between modules).</summary>
    public int ModuleId { get; }

    public LoraLinear(ILinear baseLayer, int moduleId)
    {
        Base = baseLayer;
        ModuleId = moduleId;
    }

    internal IFrozenProjection Frozen => Base as IFrozenProjection
        ?? throw new PeftException($"{Name}: the base layer does not support DoRA/merging ({Base.GetType().Name})");

    public IReadOnlyDictionary<string, LoraAdapter> Adapters => _adapters;

    public void Add(string adapterName, LoraAdapter adapter)
    {
        lock (_lock)
        {
            if (_adapters.ContainsKey(adapterName)) throw new PeftException($"{Name}: adapter '{adapterName}' already exists");
            _adapters = new Dictionary<string, LoraAdapter>(_adapters) { [adapterName] = adapter };
        }
    }

    /// <summary>Removes the adapter and returns it (the caller disposes it once no pass uses it).</summary>
    public LoraAdapter? Detach(string adapterName)
    {
        lock (_lock)
        {
            if (_merged.Contains(adapterName)) throw new PeftException($"{Name}: unmerge adapter '{adapterName}' before unloading it");
            if (!_adapters.TryGetValue(adapterName, out var a)) return null;
            var copy = new Dictionary<string, LoraAdapter>(_adapters);
            copy.Remove(adapterName);
            _adapters = copy;
            return a;
        }
    }

    /// <summary>Removes and disposes the adapter.</summary>
    public void Remove(string adapterName) => Detach(adapterName)?.Dispose();

    /// <summary>The adapter a segment names, or null (none, absent here, or merged into the base).</summary>
    LoraAdapter? Resolve(string? name) =>
        name != null && _adapters.TryGetValue(name, out var a) && (_merged.Count == 0 || !_merged.Contains(name)) ? a : null;

    /// <summary>The base's own trainable parameters (full fine-tuning, trainable biases).</summary>
    public IEnumerable<Parameter> Parameters() => Base.Parameters();

    /// <summary>The named adapter's parameters here when it is trainable and not merged (empty otherwise).</summary>
    public IEnumerable<Parameter> AdapterParameters(string name) =>
        Resolve(name) is { Trainable: true } a ? a.Parameters() : [];

    public void Forward(PassContext pass, float* x, float* y, int n)
    {
        Base.Forward(pass, x, y, n);
        var routing = pass.Routing;
        routing.Check(n);
        HostActivations? saved = null;
        var segments = routing.Segments;
        for (int i = 0; i < segments.Length; i++)
        {
            var seg = segments[i];
            var ad = Resolve(seg.Adapter);
            if (ad == null) continue;
            saved ??= pass.Saved(this, () => new HostActivations(pass.Buffers));
            var op = new AdapterOp(this, ad, pass, saved.Segment(i), pass.Compute);
            ad.Variant.Forward(op, x + (long)seg.Start * InFeatures, y + (long)seg.Start * OutFeatures, seg.CountIn(n));
        }
        if (saved == null) return;
        if (pass.Training) pass.NoteSaved();
        else pass.Release(this);   // inference keeps nothing for a backward
    }

    public void Backward(PassContext pass, float* dy, float* x, float* dx, int n)
    {
        var routing = pass.Routing;
        routing.Check(n);
        var saved = pass.TryGetSaved<HostActivations>(this);
        var segments = routing.Segments;
        for (int i = 0; i < segments.Length; i++)
        {
            var seg = segments[i];
            int rows = seg.CountIn(n);
            float* sdy = dy + (long)seg.Start * OutFeatures, sx = x + (long)seg.Start * InFeatures;
            float* sdx = dx == null ? null : dx + (long)seg.Start * InFeatures;
            var ad = Resolve(seg.Adapter);
            if (ad == null) { Base.Backward(pass, sdy, sx, sdx, rows); continue; }
            var act = saved?.Segment(i);
            if (act == null || act.Rows != rows)
                throw new InvalidOperationException($"{Name}: Backward for {rows} rows without a training forward of them in this pass");
            ad.Variant.Backward(new AdapterOp(this, ad, pass, act, pass.Compute), sdy, sx, sdx, rows);
        }
    }

    /// <summary>‖W_i + s·(B·A)_i‖² for every output row (float64), all products rank-r sized:
    /// ‖W_i‖² + 2s·⟨B_i, (W·Aᵀ)_i⟩ + s²·⟨B_i, (B·A·Aᵀ)_i⟩.</summary>
    internal void RowNormsSquared(ComputeContext ctx, LoraAdapter ad, Span<double> result)
    {
        long generation = Interlocked.Read(ref _baseGeneration);
        if (ad.NormCache?.TryGet(generation, ad.A.Value.Floats, ad.B.Value.Floats, result) == true) return;
        ComputeRowNormsSquared(ctx, ad, result);
        ad.NormCache?.Set(generation, ad.A.Value.Floats, ad.B.Value.Floats, result);
    }

    void ComputeRowNormsSquared(ComputeContext ctx, LoraAdapter ad, Span<double> result)
    {
        int r = ad.Rank, outF = OutFeatures, inF = InFeatures;
        float s = ad.Scaling;
        var baseSq = BaseRowNormsSquared(ctx);
        using var wat = ctx.Buffers.Rent((long)outF * r);       // W·Aᵀ    (out, r)
        using var aat = ctx.Buffers.Rent((long)r * r);          // A·Aᵀ    (r, r)
        using var baat = ctx.Buffers.Rent((long)outF * r);      // B·A·Aᵀ  (out, r)
        var a = ad.A.Value.AsMatrix();
        Frozen.WeightTimesTransposed(ctx, (float*)ad.A.Value.Data, r, wat.Pointer);
        ctx.Backend.Gemm(false, true, r, r, inF, 1f, a, a, 0f, aat.Pointer, r);
        ctx.Backend.Gemm(false, false, outF, r, r, 1f, ad.B.Value.AsMatrix(), MatrixView.F32(aat.Pointer, r, r), 0f, baat.Pointer, r);
        var b = ad.B.Value.Floats;
        for (int i = 0; i < outF; i++)
        {
            var bi = b.Slice(i * r, r);
            double cross = TensorPrimitives.Dot(bi, new ReadOnlySpan<float>(wat.Pointer + (long)i * r, r));
            double quad = TensorPrimitives.Dot(bi, new ReadOnlySpan<float>(baat.Pointer + (long)i * r, r));
            result[i] = baseSq[i] + 2 * s * cross + (double)s * s * quad;
        }
    }

    internal double[] RowNormsSquared(ComputeContext ctx, LoraAdapter ad)
    {
        var result = new double[OutFeatures];
        RowNormsSquared(ctx, ad, result);
        return result;
    }

    /// <summary>The frozen W was rewritten in place (PiSSA's residual): cached ‖W_i‖² no longer hold.</summary>
    internal void BaseWeightChanged()
    {
        lock (_lock) BaseChanged();
    }

    /// <summary>Under _lock: W changed, so ‖W_i‖² and every adapter's cached DoRA norms are stale.</summary>
    void BaseChanged()
    {
        _baseRowNormSq = null;
        Interlocked.Increment(ref _baseGeneration);
    }

    double[] BaseRowNormsSquared(ComputeContext ctx)
    {
        var cached = _baseRowNormSq;
        if (cached != null) return cached;
        lock (_lock)
        {
            if (_baseRowNormSq != null) return _baseRowNormSq;
            var sq = new double[OutFeatures];
            Frozen.RowNormsSquared(ctx, sq);
            return _baseRowNormSq = sq;
        }
    }

    /// <summary>Disposes the adapters and the wrapped base: the layer holds only this wrapper, so it owns both.</summary>
    public void Dispose()
    {
        foreach (var a in _adapters.Values) a.Dispose();
        (Base as IDisposable)?.Dispose();
    }
}
