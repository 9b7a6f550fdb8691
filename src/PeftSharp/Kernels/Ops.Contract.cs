// CONTRACT STUBS — the ops work fills these bodies (and may split them into one file per op) without changing the
// signatures, which the model layer already calls. Conventions (llm.c style):
//  * all activations are float32 row-major spans; shapes are in the comment above each method;
//  * every Backward ADDS (+=) into its gradient outputs; the caller zeroes them; an empty span means "not needed"
//    (e.g. a frozen weight's gradient);
//  * N = batch·seqLen tokens, laid out batch-major (token t of row b at index b·T + t).
using PeftSharp.Tensors;

namespace PeftSharp.Kernels;

public static class Embedding
{
    // output (N,C) = weight[ids[i], :]; weight (V,C) in any storage dtype.
    public static void Forward(Span<float> output, ReadOnlySpan<int> ids, in MatrixView weight) => throw new NotImplementedException();
    // dweight (V,C) += scatter-add of doutput rows (full fine-tuning only).
    public static void Backward(Span<float> dweight, ReadOnlySpan<float> doutput, ReadOnlySpan<int> ids, int c) => throw new NotImplementedException();
}

public static class RmsNorm
{
    // output (n,c) = input · rstd · weight; rstd (n) = 1/sqrt(mean(input²) + eps) is saved for Backward.
    public static void Forward(Span<float> output, Span<float> rstd, ReadOnlySpan<float> input, ReadOnlySpan<float> weight, int n, int c, float eps) => throw new NotImplementedException();
    // dinput (n,c) +=, dweight (c) += (empty when frozen).
    public static void Backward(Span<float> dinput, Span<float> dweight, ReadOnlySpan<float> doutput, ReadOnlySpan<float> input, ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, int n, int c) => throw new NotImplementedException();
}

/// <summary>cos/sin for every (position, frequency) pair, HF conventions (inv_freq = theta^(-2i/D), scaling applied).</summary>
public sealed class RopeTable
{
    public RopeTable(int headDim, int maxPositions, double theta, RopeScaling? scaling) => throw new NotImplementedException();
    public int HeadDim { get; }
    public int MaxPositions { get; }
}

public static class Rope
{
    // x (N, H, D) rotated in place at positions[N]; HF "rotate_half" pairing (i, i + D/2).
    public static void Forward(Span<float> x, ReadOnlySpan<int> positions, int heads, RopeTable table) => throw new NotImplementedException();
    // dx (N, H, D) in place: the transpose (inverse) rotation.
    public static void Backward(Span<float> dx, ReadOnlySpan<int> positions, int heads, RopeTable table) => throw new NotImplementedException();
}

public static class Attention
{
    // Causal grouped-query attention over `batch` rows of `seqLen` tokens, computed in tiles with an online softmax
    // (no T×T matrix). q (N,Hq,D); k,v (N,Hkv,D); segmentIds (N) or empty: with packing, token i attends j only if
    // j ≤ i in the same row AND segmentIds[i] == segmentIds[j]. output (N,Hq,D); lse (N,Hq) log-sum-exp saved for
    // Backward. Scale 1/sqrt(D). Query head h uses kv head h / (Hq/Hkv).
    public static void Forward(Span<float> output, Span<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<int> segmentIds, int batch, int seqLen, int qHeads, int kvHeads, int headDim) => throw new NotImplementedException();

    // dq (N,Hq,D) +=, dk, dv (N,Hkv,D) +=.
    public static void Backward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> doutput, ReadOnlySpan<float> output,
        ReadOnlySpan<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<int> segmentIds,
        int batch, int seqLen, int qHeads, int kvHeads, int headDim) => throw new NotImplementedException();

    // Incremental decoding for ONE sequence: q (tNew,Hq,D) are the queries at positions start … start+tNew−1;
    // kCache, vCache (≥ start+tNew, Hkv, D) already hold keys/values for positions 0 … start+tNew−1. Causal.
    public static void ForwardCached(Span<float> output, ReadOnlySpan<float> q, ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache,
        int start, int tNew, int qHeads, int kvHeads, int headDim) => throw new NotImplementedException();
}

public static class SwiGlu
{
    // output (N,F) = silu(gate) · up
    public static void Forward(Span<float> output, ReadOnlySpan<float> gate, ReadOnlySpan<float> up) => throw new NotImplementedException();
    // dgate, dup (N,F) +=
    public static void Backward(Span<float> dgate, Span<float> dup, ReadOnlySpan<float> doutput, ReadOnlySpan<float> gate, ReadOnlySpan<float> up) => throw new NotImplementedException();
}

public static class CrossEntropy
{
    // Loss of the LM head fused with softmax cross-entropy, chunked over the vocabulary so (N,V) logits never exist.
    // hidden (n,c) final-normed states; lmHead (V,c) any dtype; targets (n), -100 = ignored.
    // Returns the SUM of token losses and the count of non-ignored targets. If dhidden is non-empty,
    // dhidden (n,c) += gradScale · d(sum of losses)/dhidden; if dLmHead is non-empty, dLmHead (V,c) += the same for
    // the head weight (full fine-tuning / modules_to_save).
    public static (double LossSum, int Count) ForwardBackward(ReadOnlySpan<float> hidden, in MatrixView lmHead, ReadOnlySpan<int> targets,
        int n, int c, float gradScale, Span<float> dhidden, Span<float> dLmHead) => throw new NotImplementedException();
}
