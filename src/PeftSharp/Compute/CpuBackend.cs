using PeftSharp.Kernels;
using PeftSharp.Quantization;
using PeftSharp.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace PeftSharp.Compute;

/// <summary>The CPU kernels (managed SIMD, optional OpenBLAS) behind <see cref="IComputeBackend"/>.</summary>
internal sealed unsafe class CpuBackend(ComputeContext ctx) : IComputeBackend
{
    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, in MatrixView a, in MatrixView b, float beta, float* c, int ldc)
        => Kernels.Gemm.Multiply(ctx, transA, transB, m, n, k, alpha, a, b, beta, c, ldc);

    public void GemmQuant4Chunk(bool transA, bool transB, int m, int n, int k, in MatrixView a, in MatrixView b, float beta, float* c, int ldc)
        => Kernels.Gemm.MultiplyOn(ctx.Quant4Path, ctx.Threads, ctx.Buffers, transA, transB, m, n, k, 1f, a, b, beta, c, ldc);

    public void Dequantize4Rows(Quantized4Bit q, int row0, int rows, Span<float> dst) => q.DequantizeRows(ctx, row0, rows, dst);

    public void RmsNormForward(Span<float> output, Span<float> rstd, ReadOnlySpan<float> input, ReadOnlySpan<float> weight, int n, int c, float eps)
        => RmsNorm.Forward(ctx, output, rstd, input, weight, n, c, eps);

    public void RmsNormBackward(Span<float> dinput, Span<float> dweight, ReadOnlySpan<float> doutput, ReadOnlySpan<float> input,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, int n, int c)
        => RmsNorm.Backward(ctx, dinput, dweight, doutput, input, weight, rstd, n, c);

    public void RopeForward(Span<float> x, ReadOnlySpan<int> positions, int heads, RopeTable table) => Rope.Forward(ctx, x, positions, heads, table);
    public void RopeBackward(Span<float> dx, ReadOnlySpan<int> positions, int heads, RopeTable table) => Rope.Backward(ctx, dx, positions, heads, table);

    public void AttentionForward(Span<float> output, Span<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<int> segmentIds, int batch, int seqLen, int qHeads, int kvHeads, int headDim, int window)
        => Attention.Forward(ctx, output, lse, q, k, v, segmentIds, batch, seqLen, qHeads, kvHeads, headDim, window);

    public void AttentionForwardCached(Span<float> output, ReadOnlySpan<float> q, ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache,
        int start, int tNew, int qHeads, int kvHeads, int headDim, int window)
        => Attention.ForwardCached(ctx, output, q, kCache, vCache, start, tNew, qHeads, kvHeads, headDim, window);

    public void AttentionBackward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> doutput, ReadOnlySpan<float> output,
        ReadOnlySpan<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<int> segmentIds,
        int batch, int seqLen, int qHeads, int kvHeads, int headDim, int window)
        => Attention.Backward(ctx, dq, dk, dv, doutput, output, lse, q, k, v, segmentIds, batch, seqLen, qHeads, kvHeads, headDim, window);

    public void SwiGluForward(Span<float> output, ReadOnlySpan<float> gate, ReadOnlySpan<float> up) => SwiGlu.Forward(ctx, output, gate, up);

    public void SwiGluBackward(Span<float> dgate, Span<float> dup, ReadOnlySpan<float> doutput, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
        => SwiGlu.Backward(ctx, dgate, dup, doutput, gate, up);

    public void EmbeddingForward(Span<float> output, ReadOnlySpan<int> ids, in MatrixView weight) => Embedding.Forward(ctx, output, ids, weight);
    public void EmbeddingBackward(Span<float> dweight, ReadOnlySpan<float> doutput, ReadOnlySpan<int> ids, int c) => Embedding.Backward(ctx, dweight, doutput, ids, c);

    public (double LossSum, int Count) CrossEntropy(ReadOnlySpan<float> hidden, in MatrixView lmHead, ReadOnlySpan<int> targets,
        int n, int c, float gradScale, Span<float> dhidden, Span<float> dLmHead)
        => Kernels.CrossEntropy.ForwardBackward(ctx, hidden, lmHead, targets, n, c, gradScale, dhidden, dLmHead);

    public void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst) => TensorPrimitives.Add(a, b, dst);

    public void RmsNormForward(Span<float> output, Span<float> rstd, ReadOnlySpan<float> input, ReadOnlySpan<float> weight, int n, int c, float eps, float weightOffset)
        => RmsNorm.Forward(ctx, output, rstd, input, weight, n, c, eps, weightOffset);

    public void RmsNormBackward(Span<float> dinput, Span<float> dweight, ReadOnlySpan<float> doutput, ReadOnlySpan<float> input,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, int n, int c, float weightOffset)
        => RmsNorm.Backward(ctx, dinput, dweight, doutput, input, weight, rstd, n, c, weightOffset);

    public void AttentionForward(Span<float> output, Span<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<int> segmentIds, int batch, int seqLen, int qHeads, int kvHeads, int headDim, int window, float softcap)
        => Attention.Forward(ctx, output, lse, q, k, v, segmentIds, batch, seqLen, qHeads, kvHeads, headDim, window, softcap);

    public void AttentionForwardCached(Span<float> output, ReadOnlySpan<float> q, ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache,
        int start, int tNew, int qHeads, int kvHeads, int headDim, int window, float softcap)
        => Attention.ForwardCached(ctx, output, q, kCache, vCache, start, tNew, qHeads, kvHeads, headDim, window, softcap);

    public void AttentionBackward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> doutput, ReadOnlySpan<float> output,
        ReadOnlySpan<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<int> segmentIds,
        int batch, int seqLen, int qHeads, int kvHeads, int headDim, int window, float softcap)
        => Attention.Backward(ctx, dq, dk, dv, doutput, output, lse, q, k, v, segmentIds, batch, seqLen, qHeads, kvHeads, headDim, window, softcap);

    public void GeGluForward(Span<float> output, ReadOnlySpan<float> gate, ReadOnlySpan<float> up) => GeGlu.Forward(ctx, output, gate, up);

    public void GeGluBackward(Span<float> dgate, Span<float> dup, ReadOnlySpan<float> doutput, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
        => GeGlu.Backward(ctx, dgate, dup, doutput, gate, up);

    public (double LossSum, int Count) CrossEntropy(ReadOnlySpan<float> hidden, in MatrixView lmHead, ReadOnlySpan<int> targets,
        int n, int c, float gradScale, Span<float> dhidden, Span<float> dLmHead, float softcap)
        => Kernels.CrossEntropy.ForwardBackward(ctx, hidden, lmHead, targets, n, c, gradScale, dhidden, dLmHead, softcap);
}
