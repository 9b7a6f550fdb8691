using System.Text.Json;

namespace PeftSharp.Models;

/// <summary>Typed reads of one JSON object whose failures name the source file and the key (with a prefix for
/// nested objects, e.g. "rope_scaling.factor"). A key holding JSON null counts as absent.</summary>
internal readonly struct ConfigJsonFields(JsonElement obj, string source, string prefix = "")
{
    public string Source => source;
    public string KeyName(string key) => prefix + key;

    /// <summary>The key is present, even if its value is null.</summary>
    public bool HasKey(string key) => obj.TryGetProperty(key, out _);

    public bool TryGet(string key, out JsonElement value)
        => obj.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null;

    public PeftException Error(string key, string expected, JsonElement found)
        => new($"{source}: \"{KeyName(key)}\" must be {expected}, found {Describe(found)}");

    public PeftException Missing(string key, string expected)
        => new($"{source}: missing required key \"{KeyName(key)}\" ({expected})");

    public int RequiredPositiveInt(string key) => OptionalPositiveInt(key) ?? throw Missing(key, "a positive integer");

    public int? OptionalPositiveInt(string key)
    {
        int? v = OptionalInt(key);
        if (v is <= 0) throw new PeftException($"{source}: \"{KeyName(key)}\" must be a positive integer, found {v}");
        return v;
    }

    public int? OptionalInt(string key)
    {
        if (!TryGet(key, out var e)) return null;
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int v)) throw Error(key, "an integer", e);
        return v;
    }

    public double? OptionalNumber(string key)
    {
        if (!TryGet(key, out var e)) return null;
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out double v) || !double.IsFinite(v))
            throw Error(key, "a number", e);
        return v;
    }

    public double RequiredPositiveNumber(string key)
    {
        double v = OptionalNumber(key) ?? throw Missing(key, "a positive number");
        if (v <= 0) throw new PeftException($"{source}: \"{KeyName(key)}\" must be a positive number, found {v}");
        return v;
    }

    public bool? OptionalBool(string key)
    {
        if (!TryGet(key, out var e)) return null;
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(key, "true or false", e),
        };
    }

    public string? OptionalString(string key)
    {
        if (!TryGet(key, out var e)) return null;
        if (e.ValueKind != JsonValueKind.String) throw Error(key, "a string", e);
        return e.GetString();
    }

    /// <summary>An integer or a list of integers (HF eos_token_id); absent → empty.</summary>
    public int[] IntOrIntList(string key)
    {
        if (!TryGet(key, out var e)) return [];
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int single)) return [single];
        if (e.ValueKind != JsonValueKind.Array) throw Error(key, "an integer or a list of integers", e);
        var list = new List<int>();
        foreach (var item in e.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int v))
                throw Error(key, "an integer or a list of integers", e);
            list.Add(v);
        }
        return [.. list];
    }

    static string Describe(JsonElement e)
    {
        string raw = e.GetRawText();
        if (raw.Length > 60) raw = raw[..57] + "...";
        return $"{raw} ({e.ValueKind.ToString().ToLowerInvariant()})";
    }
}
