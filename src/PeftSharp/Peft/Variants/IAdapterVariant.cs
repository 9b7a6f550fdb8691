using PeftSharp.Nn;

namespace PeftSharp.Peft;

/// <summary>
/// How one kind of adapter acts on its frozen projection (PEFT's LoraVariant): initialization beyond A and B,
/// forward and backward over a segment of rows, merge and unmerge. Variants are stateless; what a forward saves lives
/// in the pass (<see cref="AdapterActivations"/>), what a merge must remember lives in the host.
/// </summary>
internal unsafe interface IAdapterVariant
{
    /// <summary>True when the adapter has a magnitude vector m (out).</summary>
    bool HasMagnitude { get; }

    /// <summary>After A and B are initialized (DoRA: m = ‖W + s·B·A‖ per row).</summary>
    void Initialize(AdapterOp op);

    /// <summary>y (n,out) holds the base output base(x) for these rows; adds the adapter's effect.</summary>
    void Forward(AdapterOp op, float* x, float* y, int n);

    /// <summary>Backward of this segment, the base's input gradient included: dx (n,in) += …, adapter gradients +=.</summary>
    void Backward(AdapterOp op, float* dy, float* x, float* dx, int n);

    /// <summary>W ← the merged weight; <see cref="Unmerge"/> restores W.</summary>
    void Merge(AdapterOp op);
    void Unmerge(AdapterOp op);

    /// <summary>Floats a training forward saves per row (memory estimates).</summary>
    long SavedFloatsPerRow(int rank, int outFeatures);
}

/// <summary>One variant call: the host module, the adapter, the pass (null for merges and init) and what the
/// forward saved for this segment.</summary>
internal readonly record struct AdapterOp(LoraLinear Host, LoraAdapter Adapter, PassContext? Pass, AdapterActivations? Saved,
    Compute.ComputeContext Compute);
