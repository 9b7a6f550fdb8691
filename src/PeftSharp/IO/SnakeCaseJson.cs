using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftSharp.IO;

/// <summary>
/// The one JSON spelling of files this project writes: snake_case keys (like transformers' own files). Files
/// written by earlier versions used .NET's PascalCase property names; <see cref="Deserialize{T}"/> reads both.
/// </summary>
internal static class SnakeCaseJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    /// <summary>Reads snake_case or the older PascalCase spelling (keys are normalized to snake_case first).</summary>
    public static T? Deserialize<T>(string json)
    {
        var node = JsonNode.Parse(json);
        return node == null ? default : Normalize(node).Deserialize<T>(Options);
    }

    /// <summary>A copy of the tree with every object key in snake_case (FinalEval → final_eval; snake keys stay).</summary>
    public static JsonNode Normalize(JsonNode node) => node switch
    {
        JsonObject o => new JsonObject(o.Select(kv => KeyValuePair.Create(ToSnake(kv.Key), kv.Value == null ? null : Normalize(kv.Value)))),
        JsonArray a => new JsonArray(a.Select(x => x == null ? null : Normalize(x)).ToArray()),
        _ => node.DeepClone(),
    };

    public static string ToSnake(string key) => key.Contains('_') || key.All(c => !char.IsUpper(c)) ? key : JsonNamingPolicy.SnakeCaseLower.ConvertName(key);
}
