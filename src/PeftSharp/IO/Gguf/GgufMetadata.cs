namespace PeftSharp.IO.Gguf;

/// <summary>One metadata value: its GGUF type and the value (string, number, bool, or an array of one element type,
/// stored as a .NET array of the matching type; string arrays as string[]).</summary>
internal sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    public static GgufValue Of(string s) => new(GgufValueType.String, s);
    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue Of(int v) => new(GgufValueType.Int32, v);
    public static GgufValue Of(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Of(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Of(string[] v) => new(GgufValueType.Array, v, GgufValueType.String);
    public static GgufValue Of(float[] v) => new(GgufValueType.Array, v, GgufValueType.Float32);
    public static GgufValue Of(int[] v) => new(GgufValueType.Array, v, GgufValueType.Int32);
}

/// <summary>GGUF key/value metadata in file order, with typed getters that name the file and key on a mismatch.</summary>
internal sealed class GgufMetadata
{
    readonly List<string> _order = [];
    readonly Dictionary<string, GgufValue> _values = new(StringComparer.Ordinal);

    /// <summary>Names the file in error messages.</summary>
    public string Source { get; }

    public GgufMetadata(string source) => Source = source;

    public IEnumerable<KeyValuePair<string, GgufValue>> Entries => _order.Select(k => new KeyValuePair<string, GgufValue>(k, _values[k]));
    public int Count => _order.Count;
    public bool Contains(string key) => _values.ContainsKey(key);

    /// <summary>Sets a key (a new key goes last; an existing one keeps its place).</summary>
    public void Set(string key, GgufValue value)
    {
        if (!_values.ContainsKey(key)) _order.Add(key);
        _values[key] = value;
    }

    public void Set(string key, string v) => Set(key, GgufValue.Of(v));
    public void Set(string key, uint v) => Set(key, GgufValue.Of(v));
    public void Set(string key, float v) => Set(key, GgufValue.Of(v));
    public void Set(string key, bool v) => Set(key, GgufValue.Of(v));

    /// <summary>Adds a key read from a file; a repeated key is an error (llama.cpp refuses duplicates too).</summary>
    internal void AddRead(string key, GgufValue value)
    {
        if (_values.ContainsKey(key)) throw new PeftException($"{Source}: metadata key '{key}' appears twice");
        Set(key, value);
    }

    public GgufValue? Get(string key) => _values.GetValueOrDefault(key);

    public string? GetString(string key) => Get(key) is { } v ? v.Value as string ?? throw Mismatch(key, v, "a string") : null;

    public string RequireString(string key) => GetString(key) ?? throw Missing(key, "a string");

    /// <summary>Any integer type, range-checked into an int.</summary>
    public long? GetInteger(string key)
    {
        if (Get(key) is not { } v) return null;
        return v.Value switch
        {
            byte b => b, sbyte sb => sb, ushort us => us, short s => s, uint u => u, int i => i, ulong ul => ul <= long.MaxValue ? (long)ul : throw Mismatch(key, v, "an integer below 2^63"), long l => l,
            _ => throw Mismatch(key, v, "an integer"),
        };
    }

    public int? GetInt(string key)
    {
        if (GetInteger(key) is not { } l) return null;
        if (l is < int.MinValue or > int.MaxValue) throw new PeftException($"{Source}: metadata '{key}' = {l} is out of range");
        return (int)l;
    }

    public int RequireInt(string key) => GetInt(key) ?? throw Missing(key, "an integer");

    public double? GetFloat(string key) => Get(key) is { } v ? v.Value switch
    {
        float f => f, double d => d,
        _ => GetInteger(key) is { } l ? l : throw Mismatch(key, v, "a number"),
    } : null;

    public bool? GetBool(string key) => Get(key) is { } v ? v.Value as bool? ?? throw Mismatch(key, v, "a bool") : null;

    public T[]? GetArray<T>(string key)
    {
        if (Get(key) is not { } v) return null;
        return v.Value as T[] ?? throw Mismatch(key, v, $"an array of {typeof(T).Name}");
    }

    PeftException Missing(string key, string what) => new($"{Source}: metadata key '{key}' is missing (expected {what})");

    PeftException Mismatch(string key, GgufValue v, string what) =>
        new($"{Source}: metadata '{key}' is {(v.Type == GgufValueType.Array ? $"an array of {v.ElementType}" : v.Type.ToString())}, expected {what}");
}
