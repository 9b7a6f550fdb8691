using ILGPU;
using ILGPU.Runtime;
using PeftSharp.Cuda.Kernels;

namespace PeftSharp.Cuda;

/// <summary>
/// The kernels, compiled once per accelerator (PTX on CUDA, .NET code on ILGPU's CPU accelerator), behind typed
/// methods whose argument order matches the CPU backend's. Every launch is queued on the accelerator's default stream
/// (cuBLAS calls share it), so calls run in order without host synchronization.
/// </summary>
internal sealed class DeviceKernels
{
    readonly Action<Index1D, ArrayView<ushort>, ArrayView<float>> _widenBf16;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> _add;
    readonly Action<Index1D, ArrayView<float>, float> _scale;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>> _copy;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> _swigluF;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _swigluB;
    readonly Action<Index1D, ArrayView<int>, ArrayView<ushort>, ArrayView<float>, int> _embedBf16;
    readonly Action<Index1D, ArrayView<int>, ArrayView<float>, ArrayView<float>, int> _embedF32;
    readonly Action<Index1D, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int> _embedB;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> _normF;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> _normBx;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> _normBw;
    readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, float> _rope;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape> _attnF;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> _attnDelta;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape> _attnBq;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape> _attnBkv;
    readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, float, int> _ce;
    readonly Action<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<float>, ArrayView<float>, long, int> _dq4;
    readonly Action<Index1D, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, long, int, float> _dq4Double;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamScalars> _adamw;
    readonly Action<Index1D, ArrayView<float>, ArrayView<double>, int, int> _sumSquares;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> _gemm;

    public DeviceKernels(Accelerator a)
    {
        _widenBf16 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>>(ElementwiseKernels.WidenBf16);
        _add = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Add);
        _copy = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Copy);
        _scale = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(ElementwiseKernels.Scale);
        _swigluF = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.SwiGluForward);
        _swigluB = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.SwiGluBackward);
        _embedBf16 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<ushort>, ArrayView<float>, int>(ElementwiseKernels.EmbeddingForwardBf16);
        _embedF32 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<float>, ArrayView<float>, int>(ElementwiseKernels.EmbeddingForwardF32);
        _embedB = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int>(ElementwiseKernels.EmbeddingBackward);
        _normF = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(NormKernels.Forward);
        _normBx = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(NormKernels.BackwardInput);
        _normBw = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(NormKernels.BackwardWeight);
        _rope = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, float>(RopeKernels.Rotate);
        _attnF = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape>(AttentionKernels.Forward);
        _attnDelta = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(AttentionKernels.Delta);
        _attnBq = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape>(AttentionKernels.BackwardQ);
        _attnBkv = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionShape>(AttentionKernels.BackwardKv);
        _ce = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, float, int>(CrossEntropyKernels.Rows);
        _dq4 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<float>, ArrayView<float>, long, int>(QuantKernels.Dequantize);
        _dq4Double = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, long, int, float>(QuantKernels.DequantizeDouble);
        _adamw = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamScalars>(OptimKernels.AdamW);
        _sumSquares = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<double>, int, int>(OptimKernels.SumSquares);
        _gemm = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(GemmKernels.Gemm);
    }

    static bool Empty(long n) => n <= 0;

    static Index1D Extent(long n) => n <= int.MaxValue ? new Index1D((int)n)
        : throw new PeftException($"a device kernel over {n} elements exceeds 2^31 threads; use a smaller batch or sequence");

    public void WidenBf16(ArrayView<ushort> src, ArrayView<float> dst, long n) { if (!Empty(n)) _widenBf16(Extent(n), src, dst); }
    public void Add(ArrayView<float> a, ArrayView<float> b, ArrayView<float> dst, long n) { if (!Empty(n)) _add(Extent(n), a, b, dst); }
    public void Copy(ArrayView<float> src, ArrayView<float> dst, long n) { if (!Empty(n)) _copy(Extent(n), src, dst); }
    public void Scale(ArrayView<float> x, float s, long n) { if (!Empty(n)) _scale(Extent(n), x, s); }

    public void SwiGluForward(ArrayView<float> output, ArrayView<float> gate, ArrayView<float> up, long n)
    { if (!Empty(n)) _swigluF(Extent(n), gate, up, output); }

    /// <summary>dgate +=, dup += (as the CPU kernel's callers expect after clearing).</summary>
    public void SwiGluBackward(ArrayView<float> dgate, ArrayView<float> dup, ArrayView<float> dout, ArrayView<float> gate, ArrayView<float> up, long n)
    { if (!Empty(n)) _swigluB(Extent(n), dout, gate, up, dgate, dup); }

    public void EmbeddingForward(ArrayView<float> output, ArrayView<int> ids, DeviceMatrix weight, int n)
    {
        long count = (long)n * weight.Cols;
        if (Empty(count)) return;
        if (weight.Bf16 is { } w16) _embedBf16(Extent(count), ids, w16, output, weight.Cols);
        else _embedF32(Extent(count), ids, weight.F32!.Value, output, weight.Cols);
    }

    /// <summary>dweight (V,c) += scatter of dout rows by ids.</summary>
    public void EmbeddingBackward(ArrayView<float> dweight, ArrayView<float> dout, ArrayView<int> ids, int n, int c)
    { if (!Empty(c)) _embedB(Extent(c), ids, dout, dweight, n, c); }

    public void RmsNormForward(ArrayView<float> output, ArrayView<float> rstd, ArrayView<float> input, ArrayView<float> weight, int n, int c, float eps)
    { if (!Empty(n)) _normF(Extent(n), input, weight, output, rstd, c, eps); }

    /// <summary>dinput += (when non-empty), dweight += (when non-empty).</summary>
    public void RmsNormBackward(ArrayView<float>? dinput, ArrayView<float>? dweight, ArrayView<float> doutput, ArrayView<float> input,
        ArrayView<float> weight, ArrayView<float> rstd, int n, int c)
    {
        if (Empty(n)) return;
        if (dinput is { } dx) _normBx(Extent(n), doutput, input, weight, rstd, dx, c);
        if (dweight is { } dw) _normBw(Extent(c), doutput, input, rstd, dw, n, c);
    }

    /// <summary>In-place rotation of x (n, heads, 2·half) by the table rows of positions; inverse = the backward.</summary>
    public void Rope(ArrayView<float> x, ArrayView<int> positions, ArrayView<float> cos, ArrayView<float> sin, int n, int heads, int half, bool inverse)
    {
        long count = (long)n * heads * half;
        if (!Empty(count)) _rope(Extent(count), x, positions, cos, sin, heads, half, inverse ? -1f : 1f);
    }

    public void AttentionForward(ArrayView<float> output, ArrayView<float> lse, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v,
        ArrayView<int> segments, int n, in AttentionShape s)
    { if (!Empty(n)) _attnF(Extent((long)n * s.QHeads), q, k, v, output, lse, segments, s); }

    /// <summary>dq, dk, dv overwritten; <paramref name="delta"/> is scratch of n·Hq floats.</summary>
    public void AttentionBackward(ArrayView<float> dq, ArrayView<float> dk, ArrayView<float> dv, ArrayView<float> dout, ArrayView<float> output,
        ArrayView<float> lse, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<int> segments, ArrayView<float> delta,
        int n, in AttentionShape s)
    {
        if (Empty(n)) return;
        _attnDelta(Extent((long)n * s.QHeads), dout, output, delta, s.HeadDim);
        _attnBq(Extent((long)n * s.QHeads), q, k, v, dout, lse, delta, dq, segments, s);
        _attnBkv(Extent((long)n * s.KvHeads), q, k, v, dout, lse, delta, dk, dv, segments, s);
    }

    /// <summary>Per-row losses of logits (rows, V) and, with <paramref name="wantGrad"/>, dlogits in place.</summary>
    public void CrossEntropyRows(ArrayView<float> logits, ArrayView<int> targets, ArrayView<float> loss, int rows, int vocab, float gradScale, bool wantGrad)
    { if (!Empty(rows)) _ce(Extent(rows), logits, targets, loss, vocab, gradScale, wantGrad ? 1 : 0); }

    public void Dequantize4(DeviceQuant4 q, long start, long count, ArrayView<float> dst)
    {
        if (Empty(count)) return;
        if (q.QuantizedAbsmax is { } qa)
            _dq4Double(Extent(count), q.Packed.View, qa.View, q.NestedAbsmax!.View, q.NestedMap!.View, q.Map.View, dst, start, q.BlockSize, q.NestedOffset);
        else _dq4(Extent(count), q.Packed.View, q.Absmax!.View, q.Map.View, dst, start, q.BlockSize);
    }

    public void AdamW(ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, long n, in AdamScalars s)
    { if (!Empty(n)) _adamw(Extent(n), p, g, m, v, s); }

    public void SumSquares(ArrayView<float> x, ArrayView<double> partials, int parts, int chunk, int n)
    { if (!Empty(parts)) _sumSquares(Extent(parts), x, partials, chunk, n); }

    public void Gemm(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, in GemmArgs g)
    { if (!Empty((long)g.M * g.N)) _gemm(Extent((long)g.M * g.N), a, b, c, g); }
}
