namespace PeftSharp.Kernels;

/// <summary>cos/sin for every (position, frequency) pair, HF conventions (inv_freq = theta^(-2i/D), scaling applied).</summary>
/// <remarks>Frequencies and angles are computed in double and stored as float: table (positions, HeadDim/2). Rows are
/// built when a position first needs them (doubling), not for all of max_position_embeddings up front: a config that
/// claims 20,000,000 positions costs nothing until a sequence that long is run.
/// LongRoPE has two factor sets: this table is the short one and <see cref="ForLength"/> hands out the long one
/// (built when first asked) for a forward whose longest sequence exceeds the original context length, as
/// transformers' `longrope_frequency_update` does; both multiply cos and sin by the attention factor.</remarks>
internal sealed class RopeTable
{
    /// <summary>The rows built so far; replaced whole (never changed) when more are needed, so a reader that holds
    /// one sees consistent cos and sin.</summary>
    sealed record Rows(float[] Cos, float[] Sin, int Count);

    readonly double[] _invFreq;
    readonly double _attention;
    readonly RopeScaling? _scaling;
    readonly object _grow = new();
    readonly RopeTable? _short;   // the long table's short sibling; null on a short (or only) table
    RopeTable? _long;
    Rows _rows;

    public RopeTable(int headDim, int maxPositions, double theta, RopeScaling? scaling)
        : this(headDim, maxPositions, theta, scaling, longFactors: false, shortSibling: null) { }

    RopeTable(int headDim, int maxPositions, double theta, RopeScaling? scaling, bool longFactors, RopeTable? shortSibling)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new PeftException($"RoPE head_dim must be a positive even number, got {headDim}");
        if (maxPositions <= 0) throw new PeftException($"RoPE table needs at least one position, got {maxPositions}");
        if (!(theta > 0)) throw new PeftException($"rope_theta must be positive, got {theta}");
        HeadDim = headDim;
        MaxPositions = maxPositions;
        Theta = theta;
        _scaling = scaling;
        _short = shortSibling;
        UsesLongFactors = longFactors;
        _invFreq = InverseFrequencies(headDim, theta, scaling, longFactors);
        _attention = scaling?.Type == "longrope" ? scaling.AttentionFactor : 1;
        if (!(_attention > 0) || double.IsInfinity(_attention))
            throw new PeftException($"rope_scaling.attention_factor must be a positive number, got {_attention}");
        _rows = Build(Math.Min(maxPositions, InitialRows));
    }

    double Theta { get; }

    /// <summary>true on LongRoPE's long-factor table.</summary>
    public bool UsesLongFactors { get; }

    /// <summary>The multiplier already applied to every cos and sin (LongRoPE's attention factor; 1 otherwise).</summary>
    public double AttentionScaling => _attention;

    /// <summary>LongRoPE: the original context length past which the long factors apply; null for other scalings.</summary>
    public int? FactorSwitchLength => _scaling?.Type == "longrope" ? _scaling.OriginalMaxPositions : null;

    /// <summary>The table for a forward whose longest sequence has <paramref name="length"/> tokens (its largest
    /// position + 1): LongRoPE's long factors when length exceeds the original context, its short ones otherwise;
    /// this table for every other scaling.</summary>
    public RopeTable ForLength(int length)
    {
        if (FactorSwitchLength is not int original) return this;
        var shortTable = _short ?? this;
        if (length <= original) return shortTable;
        if (_short is null)
        {
            var built = Volatile.Read(ref _long);
            if (built is null)
                lock (_grow)
                    built = _long ??= new RopeTable(HeadDim, MaxPositions, Theta, _scaling, longFactors: true, shortSibling: this);
            return built;
        }
        return this;
    }

    const int InitialRows = 256;

    public int HeadDim { get; }

    /// <summary>Positions the model accepts (max_position_embeddings); rows exist for those used so far.</summary>
    public int MaxPositions { get; }

    /// <summary>Positions whose rows are built now.</summary>
    internal int BuiltPositions => Volatile.Read(ref _rows).Count;

    /// <summary>The (scaled) inverse frequencies, HeadDim/2 of them.</summary>
    public ReadOnlySpan<double> InvFreq => _invFreq;

    /// <summary>cos(position · inv_freq[i]) for i in [0, HeadDim/2).</summary>
    public ReadOnlySpan<float> Cos(int position) => RowsFor(position).Cos.AsSpan(position * (HeadDim / 2), HeadDim / 2);

    /// <summary>sin(position · inv_freq[i]) for i in [0, HeadDim/2).</summary>
    public ReadOnlySpan<float> Sin(int position) => RowsFor(position).Sin.AsSpan(position * (HeadDim / 2), HeadDim / 2);

    /// <summary>Tables covering every position in <paramref name="positions"/> (each already checked to be below
    /// <see cref="MaxPositions"/>).</summary>
    internal (float[] Cos, float[] Sin) TablesFor(ReadOnlySpan<int> positions)
    {
        int max = 0;
        foreach (int p in positions) max = Math.Max(max, p);
        var rows = RowsFor(max);
        return (rows.Cos, rows.Sin);
    }

    Rows RowsFor(int position)
    {
        if ((uint)position >= (uint)MaxPositions)
            throw new PeftException($"position {position} is outside the RoPE table (0 … {MaxPositions - 1}); raise the context length");
        var rows = Volatile.Read(ref _rows);
        if (position < rows.Count) return rows;
        lock (_grow)
        {
            rows = _rows;
            if (position >= rows.Count)
            {
                long want = Math.Max((long)position + 1, 2L * rows.Count);
                rows = Build((int)Math.Min(want, MaxPositions));
                Volatile.Write(ref _rows, rows);
            }
            return rows;
        }
    }

    Rows Build(int count)
    {
        int half = HeadDim / 2;
        long length = (long)count * half;
        if (length > Array.MaxLength)
            throw new PeftException($"a RoPE table for {count:N0} positions × head_dim {HeadDim} would need {length * 8:N0} bytes; use a shorter context");
        var cos = new float[length];
        var sin = new float[length];
        for (int p = 0; p < count; p++)
            for (int i = 0; i < half; i++)
            {
                double angle = p * _invFreq[i];
                cos[(long)p * half + i] = (float)(Math.Cos(angle) * _attention);
                sin[(long)p * half + i] = (float)(Math.Sin(angle) * _attention);
            }
        return new Rows(cos, sin, count);
    }

    /// <summary>HF `rope_init_fn`s: default, linear (inv_freq / factor), llama3 (per-wavelength smoothing) and
    /// longrope (inv_freq / short_factor[i]).</summary>
    public static double[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling) =>
        InverseFrequencies(headDim, theta, scaling, longFactors: false);

    /// <summary>As <see cref="InverseFrequencies(int, double, RopeScaling?)"/>; <paramref name="longFactors"/> picks
    /// LongRoPE's long factor set (ignored by the other scalings).</summary>
    public static double[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling, bool longFactors)
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
            case "longrope":
                ApplyLongRope(inv, scaling!, longFactors);
                break;
            default:
                throw new PeftException($"rope_scaling type '{type}' is not supported (expected default, linear, llama3 or longrope)");
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

    /// <summary>transformers' longrope: inv_freq[i] = 1 / (ext_factor[i] · theta^(2i/D)).</summary>
    static void ApplyLongRope(double[] inv, RopeScaling s, bool longFactors)
    {
        string key = longFactors ? "long_factor" : "short_factor";
        var factors = (longFactors ? s.LongFactor : s.ShortFactor)
            ?? throw new PeftException($"rope_scaling type 'longrope' needs rope_scaling.{key}");
        if (factors.Count != inv.Length)
            throw new PeftException($"rope_scaling.{key} has {factors.Count} entries; head_dim {2 * inv.Length} needs {inv.Length}");
        for (int i = 0; i < inv.Length; i++)
        {
            double f = factors[i];
            if (!(f > 0) || double.IsInfinity(f)) throw new PeftException($"rope_scaling.{key}[{i}] must be a positive number, got {f}");
            inv[i] /= f;
        }
    }
}
