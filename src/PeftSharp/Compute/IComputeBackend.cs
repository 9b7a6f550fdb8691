using PeftSharp.Kernels;
using PeftSharp.Quantization;
using PeftSharp.Tensors;

namespace PeftSharp.Compute;

/// <summary>
/// The kernels that layers, passes and sessions call, as one seam: the CPU implementation is <see cref="CpuBackend"/>;
/// another device implements the same operations. Activations are float32 row-major; shapes as in each kernel's
/// reference (Kernels/Reference).
/// </summary>
internal unsafe interface IComputeBackend
{
    /// <summary>C (m,n) = alpha·op(A)·op(B) + beta·C.</summary>
    void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, in MatrixView a, in MatrixView b, float beta, float* c, int ldc);

    /// <summary>The same product for a dequantized chunk of a 4-bit weight (its own path: see ComputeOptions.Quant4ManagedGemm).</summary>
    void GemmQuant4Chunk(bool transA, bool transB, int m, int n, int k, in MatrixView a, in MatrixView b, float beta, float* c, int ldc);

    /// <summary>dst = rows [row0, row0+rows) of a 4-bit weight as float32.</summary>
    void Dequantize4Rows(Quantized4Bit q, int row0, int rows, Span<float> dst);

    void RmsNormForward(Span<float> output, Span<float> rstd, ReadOnlySpan<float> input, ReadOnlySpan<float> weight, int n, int c, float eps);
    void RmsNormBackward(Span<float> dinput, Span<float> dweight, ReadOnlySpan<float> doutput, ReadOnlySpan<float> input,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, int n, int c);

    void RopeForward(Span<float> x, ReadOnlySpan<int> positions, int heads, RopeTable table);
    void RopeBackward(Span<float> dx, ReadOnlySpan<int> positions, int heads, RopeTable table);

    /// <summary>Causal attention; window &gt; 0 limits query i to keys j with i − j &lt; window (0 = full).</summary>
    void AttentionForward(Span<float> output, Span<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<int> segmentIds, int batch, int seqLen, int qHeads, int kvHeads, int headDim, int window);
    void AttentionForwardCached(Span<float> output, ReadOnlySpan<float> q, ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache,
        int start, int tNew, int qHeads, int kvHeads, int headDim, int window);
    void AttentionBackward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> doutput, ReadOnlySpan<float> output,
        ReadOnlySpan<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<int> segmentIds,
        int batch, int seqLen, int qHeads, int kvHeads, int headDim, int window);

    void SwiGluForward(Span<float> output, ReadOnlySpan<float> gate, ReadOnlySpan<float> up);
    void SwiGluBackward(Span<float> dgate, Span<float> dup, ReadOnlySpan<float> doutput, ReadOnlySpan<float> gate, ReadOnlySpan<float> up);

    void EmbeddingForward(Span<float> output, ReadOnlySpan<int> ids, in MatrixView weight);
    void EmbeddingBackward(Span<float> dweight, ReadOnlySpan<float> doutput, ReadOnlySpan<int> ids, int c);

    /// <summary>Σ token losses of the LM head + softmax cross-entropy (and gradients when the spans are non-empty).</summary>
    (double LossSum, int Count) CrossEntropy(ReadOnlySpan<float> hidden, in MatrixView lmHead, ReadOnlySpan<int> targets,
        int n, int c, float gradScale, Span<float> dhidden, Span<float> dLmHead);

    /// <summary>dst = a + b elementwise (residual connections).</summary>
    void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst);

    // Gemma 2 / Gemma 3 (see Models/ModelConfig.Gemma.cs). Default bodies serve a backend that has only the operations
    // above: they compute the plain case and refuse the Gemma-only variant by name rather than computing another model.

    /// <summary>RMSNorm with the weight read as w + weightOffset (Gemma's (1 + w): offset 1).</summary>
    void RmsNormForward(Span<float> output, Span<float> rstd, ReadOnlySpan<float> input, ReadOnlySpan<float> weight, int n, int c, float eps, float weightOffset)
    {
        if (weightOffset != 0) throw Unsupported("RMSNorm with a weight offset (Gemma)");
        RmsNormForward(output, rstd, input, weight, n, c, eps);
    }

    /// <summary>The backward of the offset RMSNorm (dweight is with respect to the stored w).</summary>
    void RmsNormBackward(Span<float> dinput, Span<float> dweight, ReadOnlySpan<float> doutput, ReadOnlySpan<float> input,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, int n, int c, float weightOffset)
    {
        if (weightOffset != 0) throw Unsupported("RMSNorm with a weight offset (Gemma)");
        RmsNormBackward(dinput, dweight, doutput, input, weight, rstd, n, c);
    }

    /// <summary>Causal attention whose scaled scores are soft-capped, s → softcap·tanh(s / softcap) (0 = none).</summary>
    void AttentionForward(Span<float> output, Span<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<int> segmentIds, int batch, int seqLen, int qHeads, int kvHeads, int headDim, int window, float softcap)
    {
        if (softcap != 0) throw Unsupported("attention logit soft-capping (Gemma 2)");
        AttentionForward(output, lse, q, k, v, segmentIds, batch, seqLen, qHeads, kvHeads, headDim, window);
    }

    /// <summary>Cached decoding attention with soft-capped scores (0 = none).</summary>
    void AttentionForwardCached(Span<float> output, ReadOnlySpan<float> q, ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache,
        int start, int tNew, int qHeads, int kvHeads, int headDim, int window, float softcap)
    {
        if (softcap != 0) throw Unsupported("attention logit soft-capping (Gemma 2)");
        AttentionForwardCached(output, q, kCache, vCache, start, tNew, qHeads, kvHeads, headDim, window);
    }

    /// <summary>The backward of soft-capped attention (0 = none).</summary>
    void AttentionBackward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> doutput, ReadOnlySpan<float> output,
        ReadOnlySpan<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<int> segmentIds,
        int batch, int seqLen, int qHeads, int kvHeads, int headDim, int window, float softcap)
    {
        if (softcap != 0) throw Unsupported("attention logit soft-capping (Gemma 2)");
        AttentionBackward(dq, dk, dv, doutput, output, lse, q, k, v, segmentIds, batch, seqLen, qHeads, kvHeads, headDim, window);
    }

    /// <summary>output = gelu_tanh(gate) · up (Gemma's GeGLU MLP).</summary>
    void GeGluForward(Span<float> output, ReadOnlySpan<float> gate, ReadOnlySpan<float> up) => throw Unsupported("GeGLU (Gemma)");

    /// <summary>dgate, dup += the GeGLU backward.</summary>
    void GeGluBackward(Span<float> dgate, Span<float> dup, ReadOnlySpan<float> doutput, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
        => throw Unsupported("GeGLU (Gemma)");

    /// <summary>The fused LM head + cross-entropy with soft-capped logits z → softcap·tanh(z / softcap) (0 = none).</summary>
    (double LossSum, int Count) CrossEntropy(ReadOnlySpan<float> hidden, in MatrixView lmHead, ReadOnlySpan<int> targets,
        int n, int c, float gradScale, Span<float> dhidden, Span<float> dLmHead, float softcap)
    {
        if (softcap != 0) throw Unsupported("final logit soft-capping (Gemma 2)");
        return CrossEntropy(hidden, lmHead, targets, n, c, gradScale, dhidden, dLmHead);
    }

    private PeftException Unsupported(string what) => new($"the {GetType().Name} compute backend does not implement {what}");
}
