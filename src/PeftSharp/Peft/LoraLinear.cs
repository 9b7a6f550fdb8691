using PeftSharp.Kernels;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace PeftSharp.Peft;

/// <summary>
/// A base projection with named LoRA/DoRA adapters, one of them active (or none). PEFT semantics:
///   LoRA  y = x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ
///   DoRA  y = b + f ⊙ (x·Wᵀ + s·(x·Aᵀ)·Bᵀ),  f = m / ‖W + s·B·A‖_row (the norm detached)
///         (with dropout in training: y = x·Wᵀ + b + (f−1) ⊙ x_d·Wᵀ + f ⊙ s·(x_d·Aᵀ)·Bᵀ)
/// The rank-r side is multiplied first and W + s·B·A is never formed: DoRA's row norm is expanded as
/// ‖W_i‖² + 2s·⟨B_i, (W·Aᵀ)_i⟩ + s²·B_i·(A·Aᵀ)·B_iᵀ.
/// </summary>
public sealed unsafe partial class LoraLinear : IWrapsLinear, IDisposable
{
    readonly Dictionary<string, LoraAdapter> _adapters = new();
    readonly List<string> _merged = new();
    readonly Dictionary<string, float[]> _mergedDoraFactor = new();
    double[]? _baseRowNormSq;                 // ‖W_i‖², W frozen → computed once
    float[]? _wat, _aat, _baat;               // DoRA norm scratch: W·Aᵀ, A·Aᵀ, B·A·Aᵀ

    // Saved by Forward for Backward (this module only).
    Tensor? _xa;                              // (n, r)   drop(x)·Aᵀ
    Tensor? _pre;                             // (n, out) DoRA: x_d·Wᵀ + s·x_d·Aᵀ·Bᵀ, before rescaling
    float[]? _f, _norm;                       // (out)    DoRA factor m/‖·‖ and the norm
    int _savedRows;
    ulong _dropKey;
    bool _dropped;

    public ILinear Base { get; }
    public string Name => Base.Name;
    public int InFeatures => Base.InFeatures;
    public int OutFeatures => Base.OutFeatures;
    /// <summary>Index of this module in the model (decorrelates dropout masks between modules).</summary>
    public int ModuleId { get; }
    public DropoutContext Context { get; }

    /// <summary>The active adapter's name, or null when adapters are disabled.</summary>
    public string? Active { get; set; }

    public LoraLinear(ILinear baseLayer, int moduleId, DropoutContext context)
    {
        Base = baseLayer;
        ModuleId = moduleId;
        Context = context;
    }

    IFrozenProjection Frozen => Base as IFrozenProjection
        ?? throw new PeftException($"{Name}: the base layer does not support DoRA/merging ({Base.GetType().Name})");

    public IReadOnlyDictionary<string, LoraAdapter> Adapters => _adapters;

    public void Add(string adapterName, LoraAdapter adapter)
    {
        if (!_adapters.TryAdd(adapterName, adapter)) throw new PeftException($"{Name}: adapter '{adapterName}' already exists");
    }

    public void Remove(string adapterName)
    {
        if (_merged.Contains(adapterName)) throw new PeftException($"{Name}: unmerge adapter '{adapterName}' before unloading it");
        if (_adapters.Remove(adapterName, out var a)) a.Dispose();
        if (Active == adapterName) Active = null;
    }

    LoraAdapter? ActiveAdapter => Active != null && !_merged.Contains(Active) && _adapters.TryGetValue(Active, out var a) ? a : null;

    public IEnumerable<Parameter> Parameters()
    {
        foreach (var p in Base.Parameters()) yield return p;
        if (ActiveAdapter is { Trainable: true } a) foreach (var p in a.Parameters()) yield return p;
    }

    public void Forward(float* x, float* y, int n, bool training)
    {
        Base.Forward(x, y, n, training);
        var ad = ActiveAdapter;
        if (ad == null) return;
        int r = ad.Rank, inF = InFeatures, outF = OutFeatures;
        float s = ad.Scaling;

        _dropped = training && ad.DropoutP > 0;
        float* xd = x;
        if (_dropped)
        {
            _dropKey = Context.KeyFor(ModuleId);
            xd = PeftScratch.Get(PeftScratch.DroppedInput, (long)n * inF);
            Dropout.Apply(_dropKey, ad.DropoutP, x, xd, (long)n * inF);
        }
        EnsureSaved(n, r, ad.UseDora);
        float* xa = (float*)_xa!.Data;
        // xa (n,r) = x_d (n,in) · Aᵀ
        Gemm.Multiply(false, true, n, r, inF, 1f, MatrixView.F32(xd, n, inF), ad.A.Value.AsMatrix(), 0f, xa, r);

        if (!ad.UseDora)
        {
            // y (n,out) += s · xa · Bᵀ
            Gemm.Multiply(false, true, n, outF, r, s, MatrixView.F32(xa, n, r), ad.B.Value.AsMatrix(), 1f, y, outF);
            return;
        }

        ComputeDoraFactor(ad);
        float* pre = (float*)_pre!.Data;
        var bias = Frozen.BiasOrEmpty;
        if (!_dropped)
        {
            // pre = y − b (= x·Wᵀ)
            Buffer.MemoryCopy(y, pre, (long)n * outF * 4, (long)n * outF * 4);
            if (!bias.IsEmpty) for (int i = 0; i < n; i++) Sub(pre + (long)i * outF, bias);
        }
        else
        {
            // pre = x_d·Wᵀ ; y −= pre so that y + f⊙(pre + lora) below gives x·Wᵀ + b + (f−1)⊙x_d·Wᵀ + f⊙lora
            Frozen.ForwardNoBias(xd, pre, n);
            TensorPrimitives.Subtract(new Span<float>(y, n * outF), new ReadOnlySpan<float>(pre, n * outF), new Span<float>(y, n * outF));
        }
        Gemm.Multiply(false, true, n, outF, r, s, MatrixView.F32(xa, n, r), ad.B.Value.AsMatrix(), 1f, pre, outF);
        var f = _f!;
        for (int i = 0; i < n; i++)
        {
            var yRow = new Span<float>(y + (long)i * outF, outF);
            var pRow = new ReadOnlySpan<float>(pre + (long)i * outF, outF);
            if (!_dropped)
            {
                // y = b + f ⊙ pre
                TensorPrimitives.Multiply(pRow, f, yRow);
                if (!bias.IsEmpty) TensorPrimitives.Add(yRow, bias, yRow);
            }
            else TensorPrimitives.MultiplyAdd(pRow, f, yRow, yRow);
        }
    }

    static void Sub(float* row, ReadOnlySpan<float> b)
    {
        var r = new Span<float>(row, b.Length);
        TensorPrimitives.Subtract(r, b, r);
    }

    void EnsureSaved(int n, int r, bool dora)
    {
        if (_xa == null || _savedRows != n || _xa.Shape[1] != r)
        {
            _xa?.Dispose(); _pre?.Dispose(); _pre = null;
            _xa = new Tensor(DType.F32, n, r);
            _savedRows = n;
        }
        if (dora && _pre == null) _pre = new Tensor(DType.F32, n, OutFeatures);
    }

    /// <summary>f = m / ‖W + s·B·A‖_row (detached), without forming W + s·B·A.</summary>
    void ComputeDoraFactor(LoraAdapter ad)
    {
        int r = ad.Rank, outF = OutFeatures;
        _f ??= new float[outF];
        _norm ??= new float[outF];
        var normSq = RowNormsSquared(ad);
        var m = ad.Magnitude!.Value.Floats;
        for (int i = 0; i < outF; i++)
        {
            _norm[i] = (float)Math.Sqrt(Math.Max(normSq[i], 0));
            _f[i] = m[i] / _norm[i];
        }
    }

    /// <summary>‖W_i + s·(B·A)_i‖² for every output row.</summary>
    internal double[] RowNormsSquared(LoraAdapter ad)
    {
        int r = ad.Rank, outF = OutFeatures, inF = InFeatures;
        float s = ad.Scaling;
        if (_baseRowNormSq == null)
        {
            _baseRowNormSq = new double[outF];
            Frozen.RowNormsSquared(_baseRowNormSq);
        }
        // ‖W_i + s·B_i·A‖² = ‖W_i‖² + 2s·⟨B_i, (W·Aᵀ)_i⟩ + s²·⟨B_i, (B·A·Aᵀ)_i⟩, all products rank-r sized.
        if (_wat == null || _wat.Length != outF * r) { _wat = new float[outF * r]; _baat = new float[outF * r]; _aat = new float[r * r]; }
        var a = ad.A.Value.AsMatrix();
        fixed (float* watp = _wat, aatp = _aat, baatp = _baat)
        {
            Frozen.WeightTimesTransposed((float*)ad.A.Value.Data, r, watp);                          // W·Aᵀ  (out, r)
            Gemm.Multiply(false, true, r, r, inF, 1f, a, a, 0f, aatp, r);                            // A·Aᵀ  (r, r)
            Gemm.Multiply(false, false, outF, r, r, 1f, ad.B.Value.AsMatrix(), MatrixView.F32(aatp, r, r), 0f, baatp, r); // B·A·Aᵀ (out, r)
        }
        var b = ad.B.Value.Floats;
        var result = new double[outF];
        for (int i = 0; i < outF; i++)
        {
            var bi = b.Slice(i * r, r);
            double cross = TensorPrimitives.Dot(bi, _wat.AsSpan(i * r, r));
            double quad = TensorPrimitives.Dot(bi, _baat!.AsSpan(i * r, r));
            result[i] = _baseRowNormSq[i] + 2 * s * cross + (double)s * s * quad;
        }
        return result;
    }

    public void Backward(float* dy, float* x, float* dx, int n)
    {
        var ad = ActiveAdapter;
        if (ad == null) { Base.Backward(dy, x, dx, n); return; }
        if (_savedRows != n) throw new InvalidOperationException($"{Name}: Backward for {n} rows after Forward of {_savedRows}");
        int inF = InFeatures, outF = OutFeatures;

        float* xd = x, dxd = dx;
        if (_dropped)
        {
            xd = PeftScratch.Get(PeftScratch.DroppedInput, (long)n * inF);
            Dropout.Apply(_dropKey, ad.DropoutP, x, xd, (long)n * inF);   // regenerate the same mask
            dxd = dx == null ? null : PeftScratch.Get(PeftScratch.DroppedInputGrad, (long)n * inF);
            if (dxd != null) new Span<float>(dxd, n * inF).Clear();
        }

        float* gl = dy;   // gradient w.r.t. the adapter branch output before scaling by s
        if (!ad.UseDora)
        {
            Base.Backward(dy, x, dx, n);
        }
        else
        {
            var f = _f!;
            float* pre = (float*)_pre!.Data;
            // dm_i += Σ_t dy_ti · pre_ti / norm_i
            if (ad.Trainable)
            {
                var dm = ad.Magnitude!.Grad.Floats;
                // Vectorized float sums over blocks of 64 rows, flushed into float64 totals.
                var acc = new double[outF];
                var block = new float[outF];
                for (int t0 = 0; t0 < n; t0 += 64)
                {
                    block.AsSpan().Clear();
                    for (int t = t0; t < Math.Min(n, t0 + 64); t++)
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(dy + (long)t * outF, outF), new ReadOnlySpan<float>(pre + (long)t * outF, outF), block, block);
                    for (int i = 0; i < outF; i++) acc[i] += block[i];
                }
                for (int i = 0; i < outF; i++) dm[i] += (float)(acc[i] / _norm![i]);
            }
            gl = PeftScratch.Get(PeftScratch.ScaledGrad, (long)n * outF);
            for (int t = 0; t < n; t++)
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(dy + (long)t * outF, outF), f, new Span<float>(gl + (long)t * outF, outF));
            if (!_dropped)
            {
                Base.Backward(gl, x, dx, n);          // dx += (dy⊙f)·W
                CorrectBiasGrad(dy, gl, n);
            }
            else
            {
                Base.Backward(dy, x, dx, n);          // from x·Wᵀ + b
                if (dxd != null)
                {
                    // dx_d += (dy⊙(f−1))·W = gl·W − dy·W
                    Base.Backward(gl, xd, dxd, n);
                    SubtractBaseGrad(dy, xd, dxd, n);
                    CorrectBiasGrad(dy, gl, n);
                }
            }
        }

        LoraBranchBackward(ad, gl, xd, dxd, n);

        if (_dropped && dx != null)
        {
            // dx += mask ⊙ dx_d / (1 − p)
            float scale = 1f / (1f - ad.DropoutP);
            long count = (long)n * inF;
            for (long i = 0; i < count; i++)
                if (Dropout.Keep(_dropKey, i, ad.DropoutP)) dx[i] += dxd[i] * scale;
        }
    }

    /// <summary>
    /// DoRA's bias sits outside the rescaling (y = b + f⊙(…)), so its gradient is Σdy; the base calls above fed it
    /// Σgl (gl = dy⊙f) instead: add Σdy − Σgl (bias="all"/"lora_only" with a trainable base bias).
    /// </summary>
    void CorrectBiasGrad(float* dy, float* gl, int n)
    {
        if (Base is not Linear { BiasTrainable: true } lin) return;
        lin.AccumulateBiasGrad(dy, n, 1f);
        lin.AccumulateBiasGrad(gl, n, -1f);
    }

    /// <summary>dx_d −= dy·W (the frozen base's input gradient, subtracted).</summary>
    void SubtractBaseGrad(float* dy, float* xd, float* dxd, int n)
    {
        int outF = OutFeatures;
        float* neg = PeftScratch.Get(PeftScratch.NegatedGrad, (long)n * outF);
        TensorPrimitives.Negate(new ReadOnlySpan<float>(dy, n * outF), new Span<float>(neg, n * outF));
        Base.Backward(neg, xd, dxd, n);
    }

    /// <summary>Backward of s·(x_d·Aᵀ)·Bᵀ given its output gradient gl (n,out).</summary>
    void LoraBranchBackward(LoraAdapter ad, float* gl, float* xd, float* dxd, int n)
    {
        int r = ad.Rank, inF = InFeatures, outF = OutFeatures;
        float s = ad.Scaling;
        float* xa = (float*)_xa!.Data;
        var glView = MatrixView.F32(gl, n, outF);
        if (ad.Trainable)
        {
            // dB (out,r) += s · glᵀ · xa
            Gemm.Multiply(true, false, outF, r, n, s, glView, MatrixView.F32(xa, n, r), 1f, (float*)ad.B.Grad.Data, r);
        }
        // dxa (n,r) = s · gl · B
        float* dxap = PeftScratch.Get(PeftScratch.RankGrad, (long)n * r);
        {
            Gemm.Multiply(false, false, n, r, outF, s, glView, ad.B.Value.AsMatrix(), 0f, dxap, r);
            // dA (r,in) += dxaᵀ · x_d
            if (ad.Trainable)
                Gemm.Multiply(true, false, r, inF, n, 1f, MatrixView.F32(dxap, n, r), MatrixView.F32(xd, n, inF), 1f, (float*)ad.A.Grad.Data, inF);
            // dx_d (n,in) += dxa · A
            if (dxd != null)
                Gemm.Multiply(false, false, n, inF, r, 1f, MatrixView.F32(dxap, n, r), ad.A.Value.AsMatrix(), 1f, dxd, inF);
        }
    }

    public void Dispose()
    {
        foreach (var a in _adapters.Values) a.Dispose();
        _xa?.Dispose();
        _pre?.Dispose();
    }
}

/// <summary>Per-step dropout keys shared by a model's adapter layers (set by the trainer before each micro-step).</summary>
public sealed class DropoutContext
{
    public ulong Seed { get; set; }
    public ulong Step { get; set; }
    public ulong KeyFor(int moduleId) => Dropout.Key(Seed, Step, moduleId);
}
