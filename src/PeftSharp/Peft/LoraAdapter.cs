using PeftSharp.Nn;

namespace PeftSharp.Peft;

/// <summary>
/// One adapter's weights on one projection: A (r, in), B (out, r), scaling, dropout, and for DoRA the magnitude
/// vector m (out). Its kind (<see cref="Variant"/>) says how they act on the base. Parameter names are PEFT's saved
/// keys without the "base_model.model." prefix.
/// </summary>
internal sealed class LoraAdapter : IDisposable
{
    public Parameter A { get; }
    public Parameter B { get; }
    public Parameter? Magnitude { get; }
    public int Rank { get; }
    public double Alpha { get; }
    /// <summary>alpha / r, or alpha / √r (rsLoRA), computed in float64 and rounded once to float32, as PEFT's
    /// Python float meets a float32 tensor.</summary>
    public float Scaling { get; }
    public float DropoutP { get; }
    public IAdapterVariant Variant { get; }
    public bool UseDora => Variant is DoraVariant;
    public bool Trainable { get; set; } = true;

    /// <summary>PiSSA's initial factors A0 (r, in) and B0 (out, r), kept to save the adapter as a LoRA of the
    /// original base (null for every other init).</summary>
    public float[]? InitialA { get; internal set; }
    public float[]? InitialB { get; internal set; }

    /// <summary>DoRA's last row norms ‖W + s·B·A‖², reused while nothing they depend on changed (null for LoRA).</summary>
    internal RowNormCache? NormCache { get; }

    public LoraAdapter(string module, int inFeatures, int outFeatures, int rank, double alpha, bool rsLora, float dropout, bool useDora)
        : this(module, inFeatures, outFeatures, rank, alpha, rsLora, dropout, useDora ? AdapterKind.Dora : AdapterKind.Lora) { }

    public LoraAdapter(string module, int inFeatures, int outFeatures, int rank, double alpha, bool rsLora, float dropout, AdapterKind kind)
    {
        if (rank <= 0) throw new PeftException($"{module}: LoRA rank must be > 0, got {rank}");
        if (dropout is < 0 or >= 1) throw new PeftException($"{module}: lora_dropout must be in [0, 1), got {dropout}");
        Rank = rank;
        Alpha = alpha;
        Scaling = ScalingFor(alpha, rank, rsLora);
        DropoutP = dropout;
        Variant = kind.Variant;
        A = new Parameter(module + ".lora_A.weight", rank, inFeatures);
        B = new Parameter(module + ".lora_B.weight", outFeatures, rank);
        if (Variant.HasMagnitude)
        {
            Magnitude = new Parameter(module + ".lora_magnitude_vector", outFeatures);
            NormCache = new RowNormCache();
        }
    }

    /// <summary>PEFT's scaling: alpha / r, or alpha / √r with rsLoRA (float32, as the forward uses it).</summary>
    // Computed in double and rounded once (PEFT's alpha / math.sqrt(r) is a Python float).
    public static float ScalingFor(double alpha, int rank, bool rsLora) => (float)(rsLora ? alpha / Math.Sqrt(rank) : alpha / rank);

    public IEnumerable<Parameter> Parameters()
    {
        yield return A;
        yield return B;
        if (Magnitude != null) yield return Magnitude;
    }

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
        Magnitude?.Dispose();
    }
}
