using System.Text.Json;

namespace PeftSharp.Server.Http;

/// <summary>Typed, range-checked access to a JSON request body's fields; every mismatch is a 400 naming the field.</summary>
internal sealed class JsonRequest(JsonElement root)
{
    public JsonElement Root => root;

    public static async Task<JsonRequest> ReadAsync(Stream body, CancellationToken ct)
    {
        JsonDocument doc;
        try { doc = await JsonDocument.ParseAsync(body, default, ct); }
        catch (JsonException e) { throw ApiError.BadRequest($"the request body is not valid JSON: {e.Message}"); }
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw ApiError.BadRequest("the request body must be a JSON object");
        return new JsonRequest(doc.RootElement);
    }

    public bool Has(string name) => root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public JsonElement? Get(string name) => root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public string RequiredString(string name) =>
        Get(name) is { } v ? v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Type(name, "a string")
            : throw ApiError.BadRequest($"'{name}' is required", name);

    public bool Bool(string name, bool fallback) =>
        Get(name) is not { } v ? fallback : v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Type(name, "a boolean"),
        };

    public int? Int(string name, int min, int max)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x)) throw Type(name, "an integer");
        if (x < min || x > max) throw ApiError.BadRequest($"'{name}' must be in {min}…{max}, got {x}", name);
        return (int)x;
    }

    public double? Number(string name, double min, double max)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number) throw Type(name, "a number");
        double x = v.GetDouble();
        if (!(x >= min && x <= max)) throw ApiError.BadRequest($"'{name}' must be in [{min}, {max}], got {x}", name);
        return x;
    }

    public ulong? Seed(string name)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x)) throw Type(name, "an integer");
        return unchecked((ulong)x);
    }

    /// <summary>OpenAI's stop: a string or an array of up to 4 strings.</summary>
    public IReadOnlyList<string> Stops(string name)
    {
        if (Get(name) is not { } v) return [];
        if (v.ValueKind == JsonValueKind.String) return [v.GetString()!];
        if (v.ValueKind != JsonValueKind.Array) throw Type(name, "a string or an array of strings");
        var list = new List<string>();
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.String) throw Type(name, "a string or an array of strings");
            list.Add(e.GetString()!);
        }
        if (list.Count > 4) throw ApiError.BadRequest($"'{name}' takes at most 4 sequences, got {list.Count}", name);
        return list;
    }

    public static ApiError Type(string name, string expected) => ApiError.BadRequest($"'{name}' must be {expected}", name);
}
