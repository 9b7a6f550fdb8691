using PeftSharp.Nn;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace PeftSharp.Peft;

/// <summary>
/// DoRA as PEFT implements it: y = b + f ⊙ (x·Wᵀ + s·(x·Aᵀ)·Bᵀ), f = m / ‖W + s·B·A‖_row with the norm detached;
/// with dropout in training y = x·Wᵀ + b + (f−1) ⊙ x_d·Wᵀ + f ⊙ s·(x_d·Aᵀ)·Bᵀ. The row norm is expanded as
/// ‖W_i‖² + 2s·⟨B_i, (W·Aᵀ)_i⟩ + s²·B_i·(A·Aᵀ)·B_iᵀ, so W + s·B·A is never formed.
/// </summary>
internal sealed unsafe class DoraVariant : IAdapterVariant
{
    public bool HasMagnitude => true;

    /// <summary>m = ‖W + s·B·A‖_row (= ‖W‖_row when B = 0).</summary>
    public void Initialize(AdapterOp op)
    {
        var normSq = op.Host.RowNormsSquared(op.Compute, op.Adapter);
        var m = op.Adapter.Magnitude!.Value.Floats;
        for (int i = 0; i < m.Length; i++) m[i] = (float)Math.Sqrt(normSq[i]);
    }

    public void Forward(AdapterOp op, float* x, float* y, int n)
    {
        var ad = op.Adapter;
        var saved = op.Saved!;
        int outF = op.Host.OutFeatures;
        saved.Ensure(n, ad.Rank, outF, dora: true);
        float* xd = LowRankBranch.DroppedInput(op, saved, x, n, out var dropped);
        using var _ = dropped;

        // f = m / ‖W + s·B·A‖_row (detached)
        using var normLease = op.Pass!.Buffers.Rent(2L * outF);
        var normSq = new Span<double>(normLease.Pointer, outF);
        op.Host.RowNormsSquared(op.Compute, ad, normSq);
        var m = ad.Magnitude!.Value.Floats;
        var f = new Span<float>(saved.F, outF);
        var norm = new Span<float>(saved.Norm, outF);
        for (int i = 0; i < outF; i++)
        {
            norm[i] = (float)Math.Sqrt(Math.Max(normSq[i], 0));
            f[i] = m[i] / norm[i];
        }

        float* pre = saved.Pre;
        var bias = op.Host.Frozen.BiasOrEmpty;
        var all = new Span<float>(y, n * outF);
        if (!saved.Dropped)
        {
            // pre = y − b (= x·Wᵀ)
            new ReadOnlySpan<float>(y, n * outF).CopyTo(new Span<float>(pre, n * outF));
            if (!bias.IsEmpty) for (int i = 0; i < n; i++) { var r = new Span<float>(pre + (long)i * outF, outF); TensorPrimitives.Subtract(r, bias, r); }
        }
        else
        {
            // pre = x_d·Wᵀ ; y −= pre so that y + f⊙(pre + lora) below gives x·Wᵀ + b + (f−1)⊙x_d·Wᵀ + f⊙lora
            op.Host.Frozen.ForwardNoBias(op.Compute, xd, pre, n);
            TensorPrimitives.Subtract(all, new ReadOnlySpan<float>(pre, n * outF), all);
        }
        LowRankBranch.Forward(op, xd, saved.Xa, pre, n);   // pre += s·(x_d·Aᵀ)·Bᵀ
        for (int i = 0; i < n; i++)
        {
            var yRow = new Span<float>(y + (long)i * outF, outF);
            var pRow = new ReadOnlySpan<float>(pre + (long)i * outF, outF);
            if (!saved.Dropped)
            {
                TensorPrimitives.Multiply(pRow, f, yRow);     // y = b + f ⊙ pre
                if (!bias.IsEmpty) TensorPrimitives.Add(yRow, bias, yRow);
            }
            else TensorPrimitives.MultiplyAdd(pRow, f, yRow, yRow);
        }
    }

    public void Backward(AdapterOp op, float* dy, float* x, float* dx, int n)
    {
        var ad = op.Adapter;
        var saved = op.Saved!;
        var pass = op.Pass!;
        var host = op.Host;
        int inF = host.InFeatures, outF = host.OutFeatures;
        var f = new ReadOnlySpan<float>(saved.F, outF);
        float* pre = saved.Pre;

        if (ad.Trainable) AccumulateMagnitudeGrad(op, dy, pre, n);

        // gl = dy ⊙ f: the gradient of the branch output and of x·Wᵀ before rescaling
        using var glLease = pass.Buffers.Rent((long)n * outF);
        float* gl = glLease.Pointer;
        for (int t = 0; t < n; t++)
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(dy + (long)t * outF, outF), f, new Span<float>(gl + (long)t * outF, outF));

        float* xd = LowRankBranch.RedroppedInput(op, saved, x, n, out var dropped);
        using var _ = dropped;
        if (!saved.Dropped)
        {
            host.Base.Backward(pass, gl, x, dx, n);          // dx += (dy⊙f)·W
            CorrectBiasGrad(host, dy, gl, n);
            LowRankBranch.Backward(op, gl, xd, dx, saved.Xa, n);
            return;
        }
        host.Base.Backward(pass, dy, x, dx, n);              // from x·Wᵀ + b
        using var dxdLease = dx == null ? default : pass.Buffers.Rent((long)n * inF);
        float* dxd = dx == null ? null : dxdLease.Pointer;
        if (dxd != null)
        {
            new Span<float>(dxd, n * inF).Clear();
            // dx_d += (dy⊙(f−1))·W = gl·W − dy·W
            host.Base.Backward(pass, gl, xd, dxd, n);
            using var negLease = pass.Buffers.Rent((long)n * outF);
            TensorPrimitives.Negate(new ReadOnlySpan<float>(dy, n * outF), new Span<float>(negLease.Pointer, n * outF));
            host.Base.Backward(pass, negLease.Pointer, xd, dxd, n);
            CorrectBiasGrad(host, dy, gl, n);
        }
        LowRankBranch.Backward(op, gl, xd, dxd, saved.Xa, n);
        if (dx != null) LowRankBranch.AddThroughDropout(op, saved, dxd, dx, n);
    }

    /// <summary>dm_i += Σ_t dy_ti · pre_ti / norm_i: vectorized float sums over blocks of 64 rows, flushed into float64.</summary>
    static void AccumulateMagnitudeGrad(in AdapterOp op, float* dy, float* pre, int n)
    {
        int outF = op.Host.OutFeatures;
        var dm = op.Adapter.Magnitude!.Grad.Floats;
        using var accLease = op.Pass!.Buffers.Rent(2L * outF);
        using var blockLease = op.Pass.Buffers.Rent(outF);
        var acc = new Span<double>(accLease.Pointer, outF);
        var block = new Span<float>(blockLease.Pointer, outF);
        acc.Clear();
        for (int t0 = 0; t0 < n; t0 += 64)
        {
            block.Clear();
            for (int t = t0; t < Math.Min(n, t0 + 64); t++)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(dy + (long)t * outF, outF), new ReadOnlySpan<float>(pre + (long)t * outF, outF), block, block);
            for (int i = 0; i < outF; i++) acc[i] += block[i];
        }
        var norm = new ReadOnlySpan<float>(op.Saved!.Norm, outF);
        for (int i = 0; i < outF; i++) dm[i] += (float)(acc[i] / norm[i]);
    }

    /// <summary>
    /// DoRA's bias sits outside the rescaling (y = b + f⊙(…)), so its gradient is Σdy; the base calls fed it Σgl
    /// (gl = dy⊙f) instead: add Σdy − Σgl (bias="all"/"lora_only" with a trainable base bias).
    /// </summary>
    static void CorrectBiasGrad(LoraLinear host, float* dy, float* gl, int n)
    {
        if (host.Base is not Linear { BiasTrainable: true } lin) return;
        lin.AccumulateBiasGrad(dy, n, 1f);
        lin.AccumulateBiasGrad(gl, n, -1f);
    }

    /// <summary>
    /// W' = f ⊙ (W + ΔW), f = m / ‖W + ΔW‖_row, in PEFT's order and precision (DoraLinearVariant.merge): W + ΔW formed
    /// in float32, its row norm, f = m / norm in float32, the product in float32, rounded once to the storage dtype.
    /// Keeps f for an exact unmerge.
    /// </summary>
    public void Merge(AdapterOp op)
    {
        var host = op.Host;
        int inF = host.InFeatures, outF = host.OutFeatures;
        var merged = LowRankBranch.Delta(op);     // ΔW, becomes W'
        var m = op.Adapter.Magnitude!.Value.Floats;
        var f = new float[outF];
        var row = new float[inF];
        for (int i = 0; i < outF; i++)
        {
            host.Frozen.ReadRows(op.Compute, i, 1, row);
            var w = merged.AsSpan(i * inF, inF);
            TensorPrimitives.Add(row, w, w);                        // W + ΔW (float32)
            f[i] = m[i] / RowNorm(w);
            TensorPrimitives.Multiply(w, f[i], w);                  // f ⊙ (W + ΔW)
        }
        host.RememberMergeFactor(op.Adapter, f);
        host.Frozen.SetWeight(op.Compute, merged);
    }

    /// <summary>‖w‖₂ of one float32 row, accumulated in float64 and rounded once (torch.linalg.norm's float32 result
    /// up to its last bit).</summary>
    static float RowNorm(ReadOnlySpan<float> w)
    {
        double s = 0;
        foreach (var v in w) s += (double)v * v;
        return (float)Math.Sqrt(s);
    }

    /// <summary>W = W'/f − ΔW, formed in float32 and written once.</summary>
    public void Unmerge(AdapterOp op)
    {
        var host = op.Host;
        int inF = host.InFeatures, outF = host.OutFeatures;
        var restored = LowRankBranch.Delta(op);
        var f = host.TakeMergeFactor(op.Adapter);
        var row = new float[inF];
        for (int i = 0; i < outF; i++)
        {
            host.Frozen.ReadRows(op.Compute, i, 1, row);
            var d = restored.AsSpan(i * inF, inF);
            for (int k = 0; k < inF; k++) d[k] = row[k] / f[i] - d[k];
        }
        host.Frozen.SetWeight(op.Compute, restored);
    }

    public long SavedFloatsPerRow(int rank, int outFeatures) => rank + outFeatures;
}
