namespace PeftSharp.Kernels;

/// <summary>
/// HF `rope_scaling`: Type "default" (none), "linear" (positions divided by Factor) or "llama3"
/// (per-frequency smoothing between LowFreqFactor and HighFreqFactor over OriginalMaxPositions).
/// </summary>
public sealed record RopeScaling(string Type, double Factor = 1, double LowFreqFactor = 1, double HighFreqFactor = 4,
    int OriginalMaxPositions = 8192);
