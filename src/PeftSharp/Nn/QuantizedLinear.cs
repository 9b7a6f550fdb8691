using PeftSharp.Kernels;
using PeftSharp.Quantization;
using PeftSharp.Tensors;

namespace PeftSharp.Nn;

/// <summary>
/// A frozen projection whose weight is stored in bitsandbytes' 4-bit format (NF4/FP4, optional double quantization):
/// the QLoRA base layer. Products dequantize W in chunks of output rows into a reused float32 scratch buffer and run a
/// float32 GEMM per chunk, so the whole float32 weight never exists (bitsandbytes dequantizes the whole weight to the
/// compute dtype per call; the math is the same: y = x·dequant(W)ᵀ + b, dx = dy·dequant(W), no weight gradient).
/// </summary>
public sealed unsafe class QuantizedLinear : IFrozenProjection, IDisposable
{
    /// <summary>Output rows dequantized per GEMM: big enough for GEMM efficiency, small enough (rows·In·4 bytes) to
    /// stay in the last-level cache. Overridable with env PEFTSHARP_Q4_CHUNK_ROWS (measurements).</summary>
    public static int ChunkRows { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("PEFTSHARP_Q4_CHUNK_ROWS"), out int r) && r > 0 ? r : 256;

    /// <summary>Run the per-chunk products on the managed packed GEMM (as the dense BF16 base does) rather than the
    /// process-wide backend: alternating OpenBLAS calls with the .NET-threaded dequantization makes OpenBLAS's spinning
    /// workers compete with the dequantizing threads. Env PEFTSHARP_Q4_GEMM=auto uses the process-wide backend.</summary>
    public static bool ForceManagedGemm { get; set; } =
        !string.Equals(Environment.GetEnvironmentVariable("PEFTSHARP_Q4_GEMM"), "auto", StringComparison.OrdinalIgnoreCase);

    static void Multiply(bool transA, bool transB, int m, int n, int k, in MatrixView a, in MatrixView b, float beta, float* c, int ldc)
    {
        if (ForceManagedGemm) Gemm.MultiplyOn(Gemm.ManagedPath(Gemm.Simd), Threads.Count, transA, transB, m, n, k, 1f, a, b, beta, c, ldc);
        else Gemm.Multiply(transA, transB, m, n, k, 1f, a, b, beta, c, ldc);
    }

    // One scratch per calling thread (layers run one after another; tests may run models on several threads).
    [ThreadStatic] static float[]? t_scratch;

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

    int Chunk => Math.Max(1, Math.Min(ChunkRows, OutFeatures));

    float* Scratch(out float[] keep)
    {
        long need = (long)Chunk * InFeatures;
        if (t_scratch == null || t_scratch.Length < need) t_scratch = GC.AllocateUninitializedArray<float>((int)need, pinned: true);
        keep = t_scratch;
        return (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref keep[0]);
    }

    public void Forward(float* x, float* y, int n, bool training)
    {
        ForwardNoBias(x, y, n);
        if (_bias != null) Linear.AddBiasRows(y, n, _bias.Floats);
    }

    // x (n,In), y (n,Out): y[:, r0:r0+rows] = x · Wc ᵀ for each dequantized chunk Wc (rows, In)
    public void ForwardNoBias(float* x, float* y, int n)
    {
        float* w = Scratch(out var keep);
        var xv = MatrixView.F32(x, n, InFeatures);
        for (int r0 = 0; r0 < OutFeatures; r0 += Chunk)
        {
            int rows = Math.Min(Chunk, OutFeatures - r0);
            _q.DequantizeRows(r0, rows, new Span<float>(w, rows * InFeatures));
            Multiply(false, true, n, rows, InFeatures, xv, MatrixView.F32(w, rows, InFeatures), 0f, y + r0, OutFeatures);
        }
        GC.KeepAlive(keep);
    }

    // dy (n,Out), dx (n,In): dx += dy[:, r0:r0+rows] · Wc for each chunk. The 4-bit weight gets no gradient.
    public void Backward(float* dy, float* x, float* dx, int n)
    {
        if (dx == null) return;
        float* w = Scratch(out var keep);
        for (int r0 = 0; r0 < OutFeatures; r0 += Chunk)
        {
            int rows = Math.Min(Chunk, OutFeatures - r0);
            _q.DequantizeRows(r0, rows, new Span<float>(w, rows * InFeatures));
            Multiply(false, false, n, InFeatures, rows, MatrixView.F32(dy + r0, n, rows, OutFeatures),
                MatrixView.F32(w, rows, InFeatures), 1f, dx, InFeatures);
        }
        GC.KeepAlive(keep);
    }

    // a (r,In), wat (Out,r): wat[r0:r0+rows, :] = Wc · aᵀ
    public void WeightTimesTransposed(float* a, int r, float* wat)
    {
        float* w = Scratch(out var keep);
        for (int r0 = 0; r0 < OutFeatures; r0 += Chunk)
        {
            int rows = Math.Min(Chunk, OutFeatures - r0);
            _q.DequantizeRows(r0, rows, new Span<float>(w, rows * InFeatures));
            Gemm.Multiply(false, true, rows, r, InFeatures, 1f, MatrixView.F32(w, rows, InFeatures), MatrixView.F32(a, r, InFeatures), 0f,
                wat + (long)r0 * r, r);
        }
        GC.KeepAlive(keep);
    }

    public void RowNormsSquared(Span<double> dst)
    {
        float* w = Scratch(out var keep);
        for (int r0 = 0; r0 < OutFeatures; r0 += Chunk)
        {
            int rows = Math.Min(Chunk, OutFeatures - r0);
            _q.DequantizeRows(r0, rows, new Span<float>(w, rows * InFeatures));
            for (int i = 0; i < rows; i++)
            {
                float* row = w + (long)i * InFeatures;
                double s = 0;
                for (int k = 0; k < InFeatures; k++) s += (double)row[k] * row[k];
                dst[r0 + i] = s;
            }
        }
        GC.KeepAlive(keep);
    }

    public void ReadRows(int row0, int rows, Span<float> dst) => _q.DequantizeRows(row0, rows, dst);

    /// <summary>
    /// W ← requantize(dequant(W) + alpha·delta) with the same type, blocksize and double quantization (bitsandbytes'
    /// 4-bit merge, reference §2.5). The rounding this adds is recorded in <see cref="MergeRoundingError"/>.
    /// </summary>
    public void AddToWeight(ReadOnlySpan<float> delta, float alpha)
    {
        long count = (long)OutFeatures * InFeatures;
        if (delta.Length != count) throw new ArgumentException($"{Name}: delta has {delta.Length} elements, expected {OutFeatures}×{InFeatures}");
        var w = new float[count];
        _q.Dequantize(w);
        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(delta, alpha, w, w);
        var requantized = _q.QuantizeLike(w, Name + ".weight");
        var back = new float[Chunk * InFeatures];
        float err = 0;
        for (int r0 = 0; r0 < OutFeatures; r0 += Chunk)
        {
            int rows = Math.Min(Chunk, OutFeatures - r0);
            requantized.DequantizeRows(r0, rows, back);
            var exact = w.AsSpan(r0 * InFeatures, rows * InFeatures);
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
