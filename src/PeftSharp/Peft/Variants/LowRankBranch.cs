using PeftSharp.Compute;
using PeftSharp.Tensors;

namespace PeftSharp.Peft;

/// <summary>
/// The rank-r branch s·(x_d·Aᵀ)·Bᵀ that LoRA and DoRA share, forward and backward, and its input dropout. The rank-r
/// side is multiplied first; B·A is never formed.
/// </summary>
internal static unsafe class LowRankBranch
{
    /// <summary>
    /// x_d = dropout(x) when training with dropout (a pass buffer, the mask a pure function of the key, so backward
    /// regenerates it), else x itself. Records the key in <paramref name="saved"/>.
    /// </summary>
    public static float* DroppedInput(in AdapterOp op, AdapterActivations saved, float* x, int n, out BufferPool.Lease lease)
    {
        var ad = op.Adapter;
        var pass = op.Pass!;
        saved.Dropped = pass.Training && ad.DropoutP > 0;
        lease = default;
        if (!saved.Dropped) return x;
        saved.DropKey = Dropout.Key(pass.DropoutSeed, pass.DropoutStep, op.Host.ModuleId);
        long count = (long)n * op.Host.InFeatures;
        lease = pass.Buffers.Rent(count);
        Dropout.Apply(saved.DropKey, ad.DropoutP, x, lease.Pointer, count);
        return lease.Pointer;
    }

    /// <summary>The same x_d again in backward (regenerated from the saved key).</summary>
    public static float* RedroppedInput(in AdapterOp op, AdapterActivations saved, float* x, int n, out BufferPool.Lease lease)
    {
        lease = default;
        if (!saved.Dropped) return x;
        long count = (long)n * op.Host.InFeatures;
        lease = op.Pass!.Buffers.Rent(count);
        Dropout.Apply(saved.DropKey, op.Adapter.DropoutP, x, lease.Pointer, count);
        return lease.Pointer;
    }

    /// <summary>dx += mask ⊙ dx_d / (1 − p): the gradient through the dropout.</summary>
    public static void AddThroughDropout(in AdapterOp op, AdapterActivations saved, float* dxd, float* dx, int n)
    {
        float p = op.Adapter.DropoutP, scale = 1f / (1f - p);
        long count = (long)n * op.Host.InFeatures;
        for (long i = 0; i < count; i++)
            if (Dropout.Keep(saved.DropKey, i, p)) dx[i] += dxd[i] * scale;
    }

    /// <summary>xa (n,r) = x_d (n,in) · Aᵀ; then out (n,outF) += s · xa · Bᵀ.</summary>
    public static void Forward(in AdapterOp op, float* xd, float* xa, float* output, int n)
    {
        var ad = op.Adapter;
        int r = ad.Rank, inF = op.Host.InFeatures, outF = op.Host.OutFeatures;
        var k = op.Compute.Backend;
        k.Gemm(false, true, n, r, inF, 1f, MatrixView.F32(xd, n, inF), ad.A.Value.AsMatrix(), 0f, xa, r);
        k.Gemm(false, true, n, outF, r, ad.Scaling, MatrixView.F32(xa, n, r), ad.B.Value.AsMatrix(), 1f, output, outF);
    }

    /// <summary>
    /// Backward of s·(x_d·Aᵀ)·Bᵀ given its output gradient gl (n,out): dB += s·glᵀ·xa, dA += dxaᵀ·x_d and
    /// dx_d += dxa·A with dxa = s·gl·B (dx_d skipped when null).
    /// </summary>
    public static void Backward(in AdapterOp op, float* gl, float* xd, float* dxd, float* xa, int n)
    {
        var ad = op.Adapter;
        int r = ad.Rank, inF = op.Host.InFeatures, outF = op.Host.OutFeatures;
        float s = ad.Scaling;
        var k = op.Compute.Backend;
        var glView = MatrixView.F32(gl, n, outF);
        if (ad.Trainable)
            k.Gemm(true, false, outF, r, n, s, glView, MatrixView.F32(xa, n, r), 1f, (float*)ad.B.Grad.Data, r);
        using var dxaLease = op.Pass!.Buffers.Rent((long)n * r);
        float* dxa = dxaLease.Pointer;
        k.Gemm(false, false, n, r, outF, s, glView, ad.B.Value.AsMatrix(), 0f, dxa, r);
        if (ad.Trainable)
            k.Gemm(true, false, r, inF, n, 1f, MatrixView.F32(dxa, n, r), MatrixView.F32(xd, n, inF), 1f, (float*)ad.A.Grad.Data, inF);
        if (dxd != null)
            k.Gemm(false, false, n, inF, r, 1f, MatrixView.F32(dxa, n, r), ad.A.Value.AsMatrix(), 1f, dxd, inF);
    }

    /// <summary>ΔW = s·B·A (out, in), float32 (merges).</summary>
    public static float[] Delta(in AdapterOp op)
    {
        var ad = op.Adapter;
        int r = ad.Rank, inF = op.Host.InFeatures, outF = op.Host.OutFeatures;
        var delta = new float[(long)outF * inF];
        fixed (float* d = delta)
            op.Compute.Backend.Gemm(false, false, outF, inF, r, ad.Scaling, ad.B.Value.AsMatrix(), ad.A.Value.AsMatrix(), 0f, d, inF);
        return delta;
    }
}
