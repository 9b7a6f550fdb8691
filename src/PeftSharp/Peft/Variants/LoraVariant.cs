namespace PeftSharp.Peft;

/// <summary>LoRA: y = x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ; merged W' = W + s·B·A.</summary>
internal sealed unsafe class LoraVariant : IAdapterVariant
{
    public bool HasMagnitude => false;

    public void Initialize(AdapterOp op) { }

    public void Forward(AdapterOp op, float* x, float* y, int n)
    {
        var saved = op.Saved!;
        saved.Ensure(n, op.Adapter.Rank, op.Host.OutFeatures, dora: false);
        float* xd = LowRankBranch.DroppedInput(op, saved, x, n, out var dropped);
        using (dropped) LowRankBranch.Forward(op, xd, saved.Xa, y, n);
    }

    public void Backward(AdapterOp op, float* dy, float* x, float* dx, int n)
    {
        var saved = op.Saved!;
        var pass = op.Pass!;
        op.Host.Base.Backward(pass, dy, x, dx, n);
        float* xd = LowRankBranch.RedroppedInput(op, saved, x, n, out var dropped);
        using (dropped)
        {
            if (!saved.Dropped) { LowRankBranch.Backward(op, dy, xd, dx, saved.Xa, n); return; }
            using var dxdLease = dx == null ? default : pass.Buffers.Rent((long)n * op.Host.InFeatures);
            float* dxd = dx == null ? null : dxdLease.Pointer;
            if (dxd != null) new Span<float>(dxd, n * op.Host.InFeatures).Clear();
            LowRankBranch.Backward(op, dy, xd, dxd, saved.Xa, n);
            if (dx != null) LowRankBranch.AddThroughDropout(op, saved, dxd, dx, n);
        }
    }

    public void Merge(AdapterOp op) => op.Host.Frozen.AddToWeight(op.Compute, LowRankBranch.Delta(op), 1f);

    public void Unmerge(AdapterOp op) => op.Host.Frozen.AddToWeight(op.Compute, LowRankBranch.Delta(op), -1f);

    public long SavedFloatsPerRow(int rank, int outFeatures) => rank;
}
