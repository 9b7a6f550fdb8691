namespace PeftSharp.Planning;

/// <summary>
/// Estimated resident memory of one training run of PeftSharp (bytes). An ESTIMATE from the config and the memory layout
/// of this implementation, not a measurement; see <see cref="MemoryEstimator"/> for what each term holds.
/// </summary>
internal sealed record MemoryEstimate
{
    public required string Method { get; init; }
    public required int Batch { get; init; }
    public required int Seq { get; init; }
    public required int Rank { get; init; }
    public required string Targets { get; init; }
    public required bool GradientCheckpointing { get; init; }
    public required string Optimizer { get; init; }
    public required long TrainableParameters { get; init; }

    /// <summary>Frozen weights in storage dtype (BF16/F16/F32, or NF4 for q-methods) + float32 norm/bias copies.</summary>
    public required long WeightsBytes { get; init; }
    /// <summary>Trainable values in float32: adapter A, B (, m); for full fine-tuning the float32 copy of every weight.</summary>
    public required long AdapterBytes { get; init; }
    /// <summary>float32 gradient of every trainable value.</summary>
    public required long GradientBytes { get; init; }
    /// <summary>Optimizer state (AdamW: m and v float32; 8-bit: codes + block absmax).</summary>
    public required long OptimizerBytes { get; init; }
    /// <summary>Saved activations + gradient scratch of the model pass, + each adapter's saved tensors.</summary>
    public required long ActivationBytes { get; init; }
    /// <summary>Runtime baseline (.NET, JIT, kernels' per-thread buffers) + transient scratch (<see cref="ScratchBytes"/>).</summary>
    public required long OverheadBytes { get; init; }
    /// <summary>The part of <see cref="OverheadBytes"/> that depends on the shape: cross-entropy chunk, adapter scratch,
    /// 4-bit dequantization buffer, DoRA norm caches.</summary>
    public required long ScratchBytes { get; init; }

    public long TotalBytes => WeightsBytes + AdapterBytes + GradientBytes + OptimizerBytes + ActivationBytes + OverheadBytes;
    public long Tokens => (long)Batch * Seq;
}
