using PeftSharp.Compute;

namespace PeftSharp.Nn;

/// <summary>
/// y = x·Wᵀ (+ b) over n rows: the seam where adapters wrap a base projection (LoRA/DoRA wrap any ILinear,
/// dense or 4-bit, MLX-LM style). Activations are float32 row-major: x (n, In), y (n, Out). What a forward saves for
/// its backward lives in the <see cref="PassContext"/>, never in the module.
/// </summary>
internal unsafe interface ILinear
{
    /// <summary>Full HF module name, e.g. model.layers.3.self_attn.q_proj.</summary>
    string Name { get; }
    int InFeatures { get; }
    int OutFeatures { get; }

    /// <summary>y (n,Out) = x (n,In)·Wᵀ + b, overwriting y; dropout and saving follow <see cref="PassContext.Training"/>.</summary>
    void Forward(PassContext pass, float* x, float* y, int n);

    /// <summary>dx (n,In) += dy·W (skipped when dx is null); parameter gradients +=. x is the input Forward saw.</summary>
    void Backward(PassContext pass, float* dy, float* x, float* dx, int n);

    /// <summary>The base's trainable parameters (full fine-tuning weights, trainable biases); empty when frozen.</summary>
    IEnumerable<Parameter> Parameters();
}

/// <summary>
/// What adapters need from a frozen base projection beyond y = x·Wᵀ + b, for any storage (dense F32/BF16/F16 or
/// 4-bit): DoRA's row norms without materializing W + s·B·A, and merging a delta into W.
/// </summary>
internal unsafe interface IFrozenProjection : ILinear
{
    /// <summary>y (n,Out) = x (n,In)·Wᵀ, without the bias (DoRA rescales W·x but not the bias).</summary>
    void ForwardNoBias(ComputeContext ctx, float* x, float* y, int n);

    /// <summary>wat (Out, r) = W (Out,In) · aᵀ for a (r, In) float32.</summary>
    void WeightTimesTransposed(ComputeContext ctx, float* a, int r, float* wat);

    /// <summary>‖W_i‖² for every output row i (float64 accumulation).</summary>
    void RowNormsSquared(ComputeContext ctx, Span<double> dst);

    /// <summary>W += alpha · delta, delta (Out, In) float32 (merge / unmerge). Rounds to the storage dtype.</summary>
    void AddToWeight(ComputeContext ctx, ReadOnlySpan<float> delta, float alpha);

    /// <summary>
    /// W ← w, the whole (Out, In) matrix in float32, rounded once to the storage dtype (4-bit: requantized). Merges
    /// that form the merged weight themselves (DoRA's f ⊙ (W + ΔW)) write it through this, so it is rounded once as
    /// PEFT rounds it. The default goes through <see cref="AddToWeight"/> (for storages without a direct write).
    /// </summary>
    void SetWeight(ComputeContext ctx, ReadOnlySpan<float> w)
    {
        var delta = new float[(long)OutFeatures * InFeatures];
        ReadRows(ctx, 0, OutFeatures, delta);
        System.Numerics.Tensors.TensorPrimitives.Subtract(w, delta, delta);
        AddToWeight(ctx, delta, 1f);
    }

    /// <summary>W rows [row0, row0+rows) widened to float32 into dst (rows·In).</summary>
    void ReadRows(ComputeContext ctx, int row0, int rows, Span<float> dst);

    ReadOnlySpan<float> BiasOrEmpty { get; }
}

/// <summary>An adapter layer wrapping a base projection (LoRA, DoRA).</summary>
internal interface IWrapsLinear : ILinear
{
    ILinear Base { get; }
}
