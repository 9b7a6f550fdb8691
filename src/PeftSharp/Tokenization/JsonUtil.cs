using System.Text.Json;

namespace PeftSharp.Tokenization;

internal static class JsonUtil
{
    public static string Type(JsonElement e, string file, string what)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("type", out var t) || t.ValueKind != JsonValueKind.String)
            throw new PeftException($"{file}: {what} must be an object with a \"type\" string, got {Short(e)}");
        return t.GetString()!;
    }

    public static bool Bool(JsonElement e, string name, bool fallback) =>
        e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    public static string? String(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static int Int(JsonElement e, string name, int fallback) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : fallback;

    public static JsonElement Prop(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) ? v : default;

    public static string Short(JsonElement e)
    {
        string raw = e.ValueKind == JsonValueKind.Undefined ? "nothing" : e.GetRawText();
        return raw.Length > 80 ? raw[..80] + "…" : raw;
    }
}
