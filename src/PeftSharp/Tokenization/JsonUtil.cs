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

    /// <summary>Token ids are indexes of tables sized by the largest id, so an id past this is refused rather
    /// than trusted (the largest real vocabularies hold about 262,000 tokens).</summary>
    public const int MaxTokenId = (1 << 24) - 1;

    /// <summary>A token id: a whole number in [0, <see cref="MaxTokenId"/>].</summary>
    public static int TokenId(JsonElement v, string file, string where)
    {
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long id))
            throw new PeftException($"{file}: {where}: the token id must be a whole number, got {Short(v)}");
        if (id < 0 || id > MaxTokenId)
            throw new PeftException($"{file}: {where}: token id {id} is outside 0..{MaxTokenId:N0}");
        return (int)id;
    }

    public static JsonElement Prop(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) ? v : default;

    public static string Short(JsonElement e)
    {
        string raw = e.ValueKind == JsonValueKind.Undefined ? "nothing" : e.GetRawText();
        return raw.Length > 80 ? raw[..80] + "…" : raw;
    }
}
