using PeftSharp.Compute;
using PeftSharp.Kernels;
using PeftSharp.Quantization.IntGroup;
using PeftSharp.Tensors;

namespace PeftSharp.Nn;

/// <summary>
/// A frozen projection stored as a GPTQ or AWQ checkpoint stores it (<see cref="IntGroupWeight"/>): products
/// dequantize W in chunks of output rows into a reused float32 scratch (rows per chunk: ComputeOptions.Quant4ChunkRows,
/// rented from the context) and run a float32 GEMM per chunk, as the NF4 base does — y = x·dequant(W)ᵀ + b,
/// dx = dy·dequant(W), no weight gradient. Merging an adapter cannot re-run GPTQ (it needs calibration data), so the
/// first merge turns the layer into a dense float32 one (dequant(W) + ΔW) that later merges, unmerges and products use:
/// "merge into BF16" writes that, rounded once to the output dtype.
/// </summary>
internal sealed unsafe class IntGroupLinear : IFrozenProjection, IDisposable
{
    readonly IntGroupWeight _q;
    readonly Tensor? _bias;    // (Out), F32, owned
    Linear? _dense;            // after a merge: the dense float32 weight that replaced the packed one
    Tensor? _denseWeight;      // owned by _dense

    public string Name { get; }
    public int InFeatures { get; }
    public int OutFeatures { get; }
    public IntGroupWeight Weight => _q;
    /// <summary>True once an adapter was merged: the weight is dense float32 from then on.</summary>
    public bool IsDense => _dense != null;

    public IntGroupLinear(string name, IntGroupWeight weight, Tensor? bias)
    {
        Name = name;
        _q = weight;
        OutFeatures = weight.OutFeatures;
        InFeatures = weight.InFeatures;
        if (bias != null)
        {
            if (bias.Rank != 1 || bias.Shape[0] != OutFeatures)
                throw new PeftException($"{name}.bias: expected [{OutFeatures}], got {bias.ShapeString}");
            _bias = bias.ToF32();
        }
    }

    /// <summary>Bytes the weight occupies in memory (packed codes, zeros, scales, g_idx; or the dense weight after a merge).</summary>
    public long StorageBytes => _denseWeight?.ByteLength ?? _q.StorageBytes;

    int Chunk(ComputeContext ctx) => Math.Max(1, Math.Min(ctx.Quant4ChunkRows, OutFeatures));

    public void Forward(PassContext pass, float* x, float* y, int n)
    {
        ForwardNoBias(pass.Compute, x, y, n);
        if (_bias != null) Linear.AddBiasRows(y, n, _bias.Floats);
    }

    // x (n,In), y (n,Out): y[:, r0:r0+rows] = x · Wcᵀ for each dequantized chunk Wc (rows, In)
    public void ForwardNoBias(ComputeContext ctx, float* x, float* y, int n)
    {
        if (_dense != null) { _dense.ForwardNoBias(ctx, x, y, n); return; }
        var xv = MatrixView.F32(x, n, InFeatures);
        ForEachChunk(ctx, (r0, rows, w) =>
            ctx.Backend.GemmQuant4Chunk(false, true, n, rows, InFeatures, xv, MatrixView.F32(w, rows, InFeatures), 0f, y + r0, OutFeatures));
    }

    // dy (n,Out), dx (n,In): dx += dy[:, r0:r0+rows] · Wc for each chunk. The packed weight gets no gradient.
    public void Backward(PassContext pass, float* dy, float* x, float* dx, int n)
    {
        if (dx == null) return;
        if (_dense != null) { _dense.Backward(pass, dy, x, dx, n); return; }
        var ctx = pass.Compute;
        ForEachChunk(ctx, (r0, rows, w) =>
            ctx.Backend.GemmQuant4Chunk(false, false, n, InFeatures, rows, MatrixView.F32(dy + r0, n, rows, OutFeatures),
                MatrixView.F32(w, rows, InFeatures), 1f, dx, InFeatures));
    }

    // a (r,In), wat (Out,r): wat[r0:r0+rows, :] = Wc · aᵀ
    public void WeightTimesTransposed(ComputeContext ctx, float* a, int r, float* wat)
    {
        if (_dense != null) { _dense.WeightTimesTransposed(ctx, a, r, wat); return; }
        ForEachChunk(ctx, (r0, rows, w) =>
            ctx.Backend.Gemm(false, true, rows, r, InFeatures, 1f, MatrixView.F32(w, rows, InFeatures), MatrixView.F32(a, r, InFeatures), 0f,
                wat + (long)r0 * r, r));
    }

    public void RowNormsSquared(ComputeContext ctx, Span<double> dst)
    {
        if (_dense != null) { _dense.RowNormsSquared(ctx, dst); return; }
        var norms = new double[OutFeatures];
        ForEachChunk(ctx, (r0, rows, w) =>
        {
            for (int i = 0; i < rows; i++)
            {
                float* row = w + (long)i * InFeatures;
                double s = 0;
                for (int c = 0; c < InFeatures; c++) s += (double)row[c] * row[c];
                norms[r0 + i] = s;
            }
        });
        norms.CopyTo(dst);
    }

    public void ReadRows(ComputeContext ctx, int row0, int rows, Span<float> dst)
    {
        if (_dense != null) _dense.ReadRows(ctx, row0, rows, dst);
        else _q.DequantizeRows(ctx, row0, rows, dst);
    }

    /// <summary>W += alpha·delta. The first call replaces the packed weight by dequant(W) in float32 (see the class
    /// summary); the packed codes are kept only to report what the checkpoint held.</summary>
    public void AddToWeight(ComputeContext ctx, ReadOnlySpan<float> delta, float alpha)
    {
        if (delta.Length != (long)OutFeatures * InFeatures)
            throw new ArgumentException($"{Name}: delta has {delta.Length} elements, expected {OutFeatures}×{InFeatures}");
        if (_dense == null)
        {
            var t = new Tensor(DType.F32, OutFeatures, InFeatures);
            _q.DequantizeRows(ctx, 0, OutFeatures, t.Floats);
            _denseWeight = t;
            _dense = new Linear(Name, t, _bias);
            _dense.OwnWeight();
        }
        _dense.AddToWeight(ctx, delta, alpha);
    }

    // the chunk loop of every product: dequantize rows [r0, r0+rows) into the rented scratch, then act on it
    delegate void ChunkAction(int r0, int rows, float* w);

    void ForEachChunk(ComputeContext ctx, ChunkAction act)
    {
        int chunk = Chunk(ctx);
        using var scratch = ctx.Buffers.Rent((long)chunk * InFeatures);
        float* w = scratch.Pointer;
        for (int r0 = 0; r0 < OutFeatures; r0 += chunk)
        {
            int rows = Math.Min(chunk, OutFeatures - r0);
            _q.DequantizeRows(ctx, r0, rows, new Span<float>(w, rows * InFeatures));
            act(r0, rows, w);
        }
    }

    public ReadOnlySpan<float> BiasOrEmpty => _bias != null ? _bias.Floats : ReadOnlySpan<float>.Empty;
    /// <summary>The bias as an owned F32 tensor, or null.</summary>
    public Tensor? Bias => _bias;

    public IEnumerable<Parameter> Parameters() => [];

    public void Dispose()
    {
        _dense?.Dispose();   // frees _denseWeight
        _bias?.Dispose();
    }
}
