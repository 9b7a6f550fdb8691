namespace PeftSharp.Kernels;

/// <summary>cos/sin for every (position, frequency) pair, HF conventions (inv_freq = theta^(-2i/D), scaling applied).</summary>
/// <remarks>Frequencies and angles are computed in double and stored as float: table (MaxPositions, HeadDim/2).
/// Memory is MaxPositions · HeadDim · 4 bytes, so build it for the context you use, not max_position_embeddings.</remarks>
internal sealed class RopeTable
{
    readonly double[] _invFreq;
    readonly float[] _cos, _sin;

    public RopeTable(int headDim, int maxPositions, double theta, RopeScaling? scaling)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new PeftException($"RoPE head_dim must be a positive even number, got {headDim}");
        if (maxPositions <= 0) throw new PeftException($"RoPE table needs at least one position, got {maxPositions}");
        if (!(theta > 0)) throw new PeftException($"rope_theta must be positive, got {theta}");
        HeadDim = headDim;
        MaxPositions = maxPositions;
        _invFreq = InverseFrequencies(headDim, theta, scaling);
        int half = headDim / 2;
        _cos = new float[(long)maxPositions * half];
        _sin = new float[(long)maxPositions * half];
        for (int p = 0; p < maxPositions; p++)
            for (int i = 0; i < half; i++)
            {
                double angle = p * _invFreq[i];
                _cos[(long)p * half + i] = (float)Math.Cos(angle);
                _sin[(long)p * half + i] = (float)Math.Sin(angle);
            }
    }

    public int HeadDim { get; }
    public int MaxPositions { get; }

    /// <summary>The (scaled) inverse frequencies, HeadDim/2 of them.</summary>
    public ReadOnlySpan<double> InvFreq => _invFreq;

    /// <summary>cos(position · inv_freq[i]) for i in [0, HeadDim/2).</summary>
    public ReadOnlySpan<float> Cos(int position) => _cos.AsSpan(CheckedOffset(position), HeadDim / 2);

    /// <summary>sin(position · inv_freq[i]) for i in [0, HeadDim/2).</summary>
    public ReadOnlySpan<float> Sin(int position) => _sin.AsSpan(CheckedOffset(position), HeadDim / 2);

    internal float[] CosTable => _cos;
    internal float[] SinTable => _sin;

    int CheckedOffset(int position)
    {
        if ((uint)position >= (uint)MaxPositions)
            throw new PeftException($"position {position} is outside the RoPE table (0 … {MaxPositions - 1}); raise the context length");
        return position * (HeadDim / 2);
    }

    /// <summary>HF `rope_init_fn`s: default, linear (inv_freq / factor) and llama3 (per-wavelength smoothing).</summary>
    public static double[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        int half = headDim / 2;
        var inv = new double[half];
        for (int i = 0; i < half; i++) inv[i] = 1.0 / Math.Pow(theta, 2.0 * i / headDim);
        string type = scaling?.Type ?? "default";
        switch (type)
        {
            case "default":
                break;
            case "linear":
                if (!(scaling!.Factor > 0)) throw new PeftException($"rope_scaling.factor must be positive for linear scaling, got {scaling.Factor}");
                for (int i = 0; i < half; i++) inv[i] /= scaling.Factor;
                break;
            case "llama3":
                ApplyLlama3(inv, scaling!);
                break;
            default:
                throw new PeftException($"rope_scaling type '{type}' is not supported (expected default, linear or llama3)");
        }
        return inv;
    }

    static void ApplyLlama3(double[] inv, RopeScaling s)
    {
        if (!(s.Factor > 0)) throw new PeftException($"rope_scaling.factor must be positive for llama3 scaling, got {s.Factor}");
        if (!(s.HighFreqFactor > s.LowFreqFactor))
            throw new PeftException($"rope_scaling.high_freq_factor ({s.HighFreqFactor}) must exceed low_freq_factor ({s.LowFreqFactor})");
        if (s.OriginalMaxPositions <= 0)
            throw new PeftException($"rope_scaling.original_max_position_embeddings must be positive, got {s.OriginalMaxPositions}");
        double orig = s.OriginalMaxPositions;
        double lowFreqWavelen = orig / s.LowFreqFactor, highFreqWavelen = orig / s.HighFreqFactor;
        for (int i = 0; i < inv.Length; i++)
        {
            double wavelen = 2 * Math.PI / inv[i];
            if (wavelen < highFreqWavelen) continue;                                  // high frequency: unchanged
            if (wavelen > lowFreqWavelen) { inv[i] /= s.Factor; continue; }          // low frequency: interpolated
            double smooth = (orig / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
            inv[i] = (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
        }
    }
}
