using System.Text.Json;

namespace PeftSharp.Models;

/// <summary>
/// Where a config keeps its RoPE settings, in both forms transformers writes. transformers 4: a top-level
/// <c>rope_theta</c> and a <c>rope_scaling</c> object (rope_type and the scaling's keys). transformers 5: one
/// <c>rope_parameters</c> object holding rope_type, rope_theta, partial_rotary_factor and the scaling keys, nested per
/// layer type (<c>{"full_attention": …, "sliding_attention": …}</c>) where layer types differ, as Gemma 3's do. As
/// transformers 5 reads a config (RotaryEmbeddingConfigMixin): a non-null rope_scaling is taken as the parameters,
/// else rope_parameters; a value inside wins over the top-level rope_theta / partial_rotary_factor.
/// </summary>
/// <param name="Global">The parameters of full-attention layers (of every layer, when not nested); null: none given.</param>
/// <param name="Local">A nested form's sliding_attention parameters; null otherwise.</param>
/// <param name="Legacy">The object came from rope_scaling (transformers 4), which must name its rope_type.</param>
internal readonly record struct RopeFields(ConfigJsonFields? Global, ConfigJsonFields? Local, bool Legacy)
{
    static readonly string[] LayerTypes = ["full_attention", "sliding_attention"];

    public static RopeFields Of(ConfigJsonFields f)
    {
        string? key = f.TryGet("rope_scaling", out var e) ? "rope_scaling" : f.TryGet("rope_parameters", out e) ? "rope_parameters" : null;
        if (key == null) return new(null, null, false);
        if (e.ValueKind != JsonValueKind.Object) throw f.Error(key, "an object or null", e);
        var r = new ConfigJsonFields(e, f.Source, f.KeyName(key) + ".");
        var names = e.EnumerateObject().Select(p => p.Name).ToList();
        if (names.Count == 0 || !names.All(n => LayerTypes.Contains(n))) return new(r, null, key == "rope_scaling");
        ConfigJsonFields? Part(string type)
        {
            if (!r.TryGet(type, out var pe)) return null;
            if (pe.ValueKind != JsonValueKind.Object) throw r.Error(type, "an object", pe);
            return new ConfigJsonFields(pe, f.Source, r.KeyName(type) + ".");
        }
        var full = Part("full_attention");
        var sliding = Part("sliding_attention");
        return new(full ?? sliding, full == null ? null : sliding, key == "rope_scaling");
    }

    /// <summary>rope_theta of the full-attention layers: inside the parameters, else top-level, else the class default.</summary>
    public double Theta(ConfigJsonFields f, double fallback) => Positive(Global, "rope_theta") ?? Positive(f, "rope_theta") ?? fallback;

    /// <summary>partial_rotary_factor, inside the parameters or top-level; null when neither gives one.</summary>
    public double? PartialRotaryFactor(ConfigJsonFields f) => Positive(Global, "partial_rotary_factor") ?? Positive(f, "partial_rotary_factor");

    /// <summary>
    /// The RoPE base of sliding-window layers when they have their own (Gemma 3: sliding_attention.rope_theta, else the
    /// transformers 4 key rope_local_base_freq, else 10000). Their RoPE is plain in transformers (no scaling), and a
    /// nested form that says otherwise is refused by name.
    /// </summary>
    public double LocalTheta(ConfigJsonFields f)
    {
        if (Local is { } l)
        {
            string type = l.OptionalString("rope_type") ?? l.OptionalString("type") ?? "default";
            if (type != "default")
                throw new PeftException($"{f.Source}: \"{l.KeyName("rope_type")}\" is \"{type}\"; sliding-window layers are supported with \"default\" RoPE only");
        }
        return Positive(Local, "rope_theta") ?? Positive(f, "rope_local_base_freq") ?? 10000;
    }

    /// <summary>Refuses a nested form whose layer types differ, for a model whose layers all share one RoPE.</summary>
    public void CheckSingle(ConfigJsonFields f, string modelType)
    {
        if (Local is not { } l || Global is not { } g) return;
        string Type(ConfigJsonFields x) => x.OptionalString("rope_type") ?? x.OptionalString("type") ?? "default";
        bool same = Type(l) == "default" && Type(g) == "default" && Positive(l, "rope_theta") == Positive(g, "rope_theta");
        if (!same)
            throw new PeftException($"{f.Source}: \"{l.KeyName("rope_type").Replace(".rope_type", "")}\" differs from the full_attention parameters, " +
                $"but {modelType} applies one RoPE to every layer");
    }

    static double? Positive(ConfigJsonFields? x, string key)
    {
        if (x is not { } o) return null;
        double? v = o.OptionalNumber(key);
        if (v is <= 0) throw new PeftException($"{o.Source}: \"{o.KeyName(key)}\" must be a positive number, found {v}");
        return v;
    }
}
