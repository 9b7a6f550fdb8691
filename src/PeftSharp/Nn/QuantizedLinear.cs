using PeftSharp.Compute;
using PeftSharp.Kernels;
using PeftSharp.Quantization;
using PeftSharp.Tensors;

namespace PeftSharp.Nn;

/// <summary>
/// A frozen projection whose weight is stored in bitsandbytes' 4-bit format (NF4/FP4, optional double quantization):
/// the QLoRA base layer. Products dequantize W in chunks of output rows into a reused float32 scratch buffer and run a
/// float32 GEMM per chunk (rows per chunk: ComputeOptions.Quant4ChunkRows; the scratch is rented from the context), so the whole float32 weight never exists (bitsandbytes dequantizes the whole weight to the
/// compute dtype per call; the math is the same: y = x·dequant(W)ᵀ + b, dx = dy·dequant(W), no weight gradient).
/// </summary>
internal sealed unsafe class QuantizedLinear : IFrozenProjection, IDisposable
{
    Quantized4Bit _q;
    readonly Tensor? _bias;            // (Out), F32, owned

    public string Name { get; }
    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Quantized4Bit Weight => _q;
    /// <summary>Max |(W + ΔW) − dequant(requantize(W + ΔW))| over all merges into this layer so far (0 if none).</summary>
    public float MergeRoundingError { get; private set; }

    /// <summary>Takes ownership of <paramref name="weight"/> (a 2-D [out, in] quantized tensor).</summary>
    public QuantizedLinear(string name, Quantized4Bit weight, Tensor? bias)
    {
        if (weight.Shape.Length != 2) throw new PeftException($"{name}.weight: expected a 2-D [out, in] quantized weight, got shape [{string.Join(", ", weight.Shape)}]");
        Name = name;
        _q = weight;
        OutFeatures = weight.Shape[0];
        InFeatures = weight.Shape[1];
        if (bias != null)
        {
            if (bias.Rank != 1 || bias.Shape[0] != OutFeatures)
                throw new PeftException($"{name}.bias: expected [{OutFeatures}], got {bias.ShapeString}");
            _bias = bias.ToF32();
        }
    }

    /// <summary>Bytes the weight occupies: packed codes + absmax (+ nested absmax, maps) — its real in-memory size.</summary>
    public long StorageBytes => _q.PackedByteLength
        + (_q.DoubleQuant ? _q.QuantizedAbsmax!.Length + 4L * (_q.NestedAbsmax!.Length + _q.NestedQuantMap!.Length) : 4L * _q.Absmax!.Length)
        + 4L * _q.QuantMap.Length;

    int Chunk(ComputeContext ctx) => Math.Max(1, Math.Min(ctx.Quant4ChunkRows, OutFeatures));

    BufferPool.Lease Scratch(ComputeContext ctx) => ctx.Buffers.Rent((long)Chunk(ctx) * InFeatures);

    public void Forward(PassContext pass, float* x, float* y, int n)
    {
        ForwardNoBias(pass.Compute, x, y, n);
        if (_bias != null) Linear.AddBiasRows(y, n, _bias.Floats);
    }

    // x (n,In), y (n,Out): y[:, r0:r0+rows] = x · Wc ᵀ for each dequantized chunk Wc (rows, In)
    public void ForwardNoBias(ComputeContext ctx, float* x, float* y, int n)
    {
        using var scratch = Scratch(ctx);
        float* w = scratch.Pointer;
        var k = ctx.Backend;
        var xv = MatrixView.F32(x, n, InFeatures);
        int chunk = Chunk(ctx);
        for (int r0 = 0; r0 < OutFeatures; r0 += chunk)
        {
            int rows = Math.Min(chunk, OutFeatures - r0);
            k.Dequantize4Rows(_q, r0, rows, new Span<float>(w, rows * InFeatures));
            k.GemmQuant4Chunk(false, true, n, rows, InFeatures, xv, MatrixView.F32(w, rows, InFeatures), 0f, y + r0, OutFeatures);
        }
    }

    // dy (n,Out), dx (n,In): dx += dy[:, r0:r0+rows] · Wc for each chunk. The 4-bit weight gets no gradient.
    public void Backward(PassContext pass, float* dy, float* x, float* dx, int n)
    {
        if (dx == null) return;
        var ctx = pass.Compute;
        using var scratch = Scratch(ctx);
        float* w = scratch.Pointer;
        var k = ctx.Backend;
        int chunk = Chunk(ctx);
        for (int r0 = 0; r0 < OutFeatures; r0 += chunk)
        {
            int rows = Math.Min(chunk, OutFeatures - r0);
            k.Dequantize4Rows(_q, r0, rows, new Span<float>(w, rows * InFeatures));
            k.GemmQuant4Chunk(false, false, n, InFeatures, rows, MatrixView.F32(dy + r0, n, rows, OutFeatures),
                MatrixView.F32(w, rows, InFeatures), 1f, dx, InFeatures);
        }
    }

    // a (r,In), wat (Out,r): wat[r0:r0+rows, :] = Wc · aᵀ
    public void WeightTimesTransposed(ComputeContext ctx, float* a, int r, float* wat)
    {
        using var scratch = Scratch(ctx);
        float* w = scratch.Pointer;
        int chunk = Chunk(ctx);
        for (int r0 = 0; r0 < OutFeatures; r0 += chunk)
        {
            int rows = Math.Min(chunk, OutFeatures - r0);
            ctx.Backend.Dequantize4Rows(_q, r0, rows, new Span<float>(w, rows * InFeatures));
            ctx.Backend.Gemm(false, true, rows, r, InFeatures, 1f, MatrixView.F32(w, rows, InFeatures), MatrixView.F32(a, r, InFeatures), 0f,
                wat + (long)r0 * r, r);
        }
    }

    public void RowNormsSquared(ComputeContext ctx, Span<double> dst)
    {
        using var scratch = Scratch(ctx);
        float* w = scratch.Pointer;
        int chunk = Chunk(ctx);
        for (int r0 = 0; r0 < OutFeatures; r0 += chunk)
        {
            int rows = Math.Min(chunk, OutFeatures - r0);
            ctx.Backend.Dequantize4Rows(_q, r0, rows, new Span<float>(w, rows * InFeatures));
            for (int i = 0; i < rows; i++)
            {
                float* row = w + (long)i * InFeatures;
                double s = 0;
                for (int c = 0; c < InFeatures; c++) s += (double)row[c] * row[c];
                dst[r0 + i] = s;
            }
        }
    }

    public void ReadRows(ComputeContext ctx, int row0, int rows, Span<float> dst) => _q.DequantizeRows(ctx, row0, rows, dst);

    /// <summary>
    /// W ← requantize(dequant(W) + alpha·delta) with the same type, blocksize and double quantization (bitsandbytes'
    /// 4-bit merge, reference §2.5). The rounding this adds is recorded in <see cref="MergeRoundingError"/>.
    /// </summary>
    public void AddToWeight(ComputeContext ctx, ReadOnlySpan<float> delta, float alpha)
    {
        long count = (long)OutFeatures * InFeatures;
        if (delta.Length != count) throw new ArgumentException($"{Name}: delta has {delta.Length} elements, expected {OutFeatures}×{InFeatures}");
        var w = new float[count];
        _q.Dequantize(ctx, w);
        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(delta, alpha, w, w);
        SetWeight(ctx, w);
    }

    /// <summary>W ← requantize(w) with the same settings; the rounding is recorded in <see cref="MergeRoundingError"/>.</summary>
    public void SetWeight(ComputeContext ctx, ReadOnlySpan<float> w)
    {
        if (w.Length != (long)OutFeatures * InFeatures) throw new ArgumentException($"{Name}: weight has {w.Length} elements, expected {OutFeatures}×{InFeatures}");
        var requantized = _q.QuantizeLike(ctx, w, Name + ".weight");
        int chunk = Chunk(ctx);
        var back = new float[chunk * InFeatures];
        float err = 0;
        for (int r0 = 0; r0 < OutFeatures; r0 += chunk)
        {
            int rows = Math.Min(chunk, OutFeatures - r0);
            requantized.DequantizeRows(ctx, r0, rows, back);
            var exact = w.Slice(r0 * InFeatures, rows * InFeatures);
            for (int k = 0; k < exact.Length; k++) err = Math.Max(err, Math.Abs(exact[k] - back[k]));
        }
        _q.Dispose();
        _q = requantized;
        MergeRoundingError = Math.Max(MergeRoundingError, err);
    }

    public ReadOnlySpan<float> BiasOrEmpty => _bias != null ? _bias.Floats : ReadOnlySpan<float>.Empty;
    /// <summary>The bias as an owned F32 tensor, or null.</summary>
    public Tensor? Bias => _bias;

    public IEnumerable<Parameter> Parameters() => [];

    public void Dispose()
    {
        _q.Dispose();
        _bias?.Dispose();
    }
}
