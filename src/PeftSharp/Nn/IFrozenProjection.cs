namespace PeftSharp.Nn;

/// <summary>
/// What adapters need from a frozen base projection beyond y = x·Wᵀ + b, for any storage (dense F32/BF16/F16 or
/// 4-bit): DoRA's row norms without materializing W + s·B·A, and merging a delta into W.
/// </summary>
public unsafe interface IFrozenProjection : ILinear
{
    /// <summary>y (n,Out) = x (n,In)·Wᵀ, without the bias (DoRA rescales W·x but not the bias).</summary>
    void ForwardNoBias(float* x, float* y, int n);

    /// <summary>wat (Out, r) = W (Out,In) · aᵀ for a (r, In) float32.</summary>
    void WeightTimesTransposed(float* a, int r, float* wat);

    /// <summary>‖W_i‖² for every output row i (float64 accumulation).</summary>
    void RowNormsSquared(Span<double> dst);

    /// <summary>W += alpha · delta, delta (Out, In) float32 (merge / unmerge). Rounds to the storage dtype.</summary>
    void AddToWeight(ReadOnlySpan<float> delta, float alpha);

    /// <summary>W rows [row0, row0+rows) widened to float32 into dst (rows·In).</summary>
    void ReadRows(int row0, int rows, Span<float> dst);

    ReadOnlySpan<float> BiasOrEmpty { get; }
}
