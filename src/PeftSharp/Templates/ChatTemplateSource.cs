using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftSharp.Templates;

/// <summary>
/// Reads the chat template and its special tokens from a tokenizer_config.json: <c>chat_template</c> is a string or
/// a list of {name, template} (the one named "default" is taken); <c>bos_token</c>/<c>eos_token</c> are a string or
/// {"content": ...}. A separate chat_template.jinja next to the config (newer transformers) is used when the config
/// has none.
/// </summary>
internal static class ChatTemplateSource
{
    /// <summary>Loads the template of a model folder or a tokenizer_config.json path; <paramref name="templateOverride"/>
    /// (template source, e.g. read from a .jinja file) replaces the config's chat_template, keeping its special tokens.</summary>
    public static ChatTemplate Load(string path, string? templateOverride = null)
    {
        if (IO.Gguf.GgufModelLoader.IsGguf(path))
            return FromGguf(path, templateOverride) ?? throw new PeftException($"{path}: no tokenizer.chat_template in the GGUF file");
        string configPath = Directory.Exists(path) ? Path.Combine(path, "tokenizer_config.json") : path;
        if (!File.Exists(configPath)) throw new PeftException($"{configPath}: file not found (expected tokenizer_config.json)");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(configPath)); }
        catch (JsonException e) { throw new PeftException($"{configPath}: invalid JSON: {e.Message}"); }
        if (root is not JsonObject obj) throw new PeftException($"{configPath}: expected a JSON object");
        string? template = templateOverride ?? ReadTemplate(obj, configPath);
        if (template == null)
        {
            string jinja = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(configPath))!, "chat_template.jinja");
            if (File.Exists(jinja)) template = File.ReadAllText(jinja);
        }
        if (template == null)
            throw new PeftException($"{configPath}: no \"chat_template\" (and no chat_template.jinja beside it); " +
                                    "this model has no chat template, use a text or prompt/completion data set or pass a template file");
        return new ChatTemplate(template, ReadToken(obj, "bos_token", configPath), ReadToken(obj, "eos_token", configPath));
    }

    /// <summary>Like <see cref="Load"/>, but null when the model has no chat template (fine for text and
    /// prompt/completion data); a malformed config is still an error.</summary>
    public static ChatTemplate? TryLoad(string path)
    {
        if (IO.Gguf.GgufModelLoader.IsGguf(path)) return FromGguf(path, null);
        string configPath = Directory.Exists(path) ? Path.Combine(path, "tokenizer_config.json") : path;
        if (!File.Exists(configPath)) return null;
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(configPath)); }
        catch (JsonException e) { throw new PeftException($"{configPath}: invalid JSON: {e.Message}"); }
        if (root is JsonObject obj && obj["chat_template"] == null &&
            !File.Exists(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(configPath))!, "chat_template.jinja")))
            return null;
        return Load(configPath);
    }

    /// <summary>A GGUF model's tokenizer.chat_template with its BOS/EOS token strings (null when it has none).</summary>
    static ChatTemplate? FromGguf(string path, string? templateOverride)
    {
        using var f = IO.Gguf.GgufFile.Open(path);
        var m = f.Metadata;
        var tokens = m.GetArray<string>("tokenizer.ggml.tokens");
        string? Token(string key) => tokens != null && m.GetInt(key) is { } id && (uint)id < (uint)tokens.Length ? tokens[id] : null;
        string? template = templateOverride ?? m.GetString("tokenizer.chat_template");
        return template == null ? null : new ChatTemplate(template, Token("tokenizer.ggml.bos_token_id"), Token("tokenizer.ggml.eos_token_id"));
    }

    /// <summary>Parses the config text (for tests and callers that already hold it).</summary>
    public static (string? Template, string? Bos, string? Eos) Parse(string json, string nameForErrors)
    {
        if (JsonNode.Parse(json) is not JsonObject obj) throw new PeftException($"{nameForErrors}: expected a JSON object");
        return (ReadTemplate(obj, nameForErrors), ReadToken(obj, "bos_token", nameForErrors), ReadToken(obj, "eos_token", nameForErrors));
    }

    private static string? ReadTemplate(JsonObject obj, string file)
    {
        var node = obj["chat_template"];
        switch (node)
        {
            case null: return null;
            case JsonValue v when v.TryGetValue(out string? s): return s;
            case JsonArray arr:
                foreach (var item in arr)
                {
                    if (item is JsonObject o && o["name"]?.GetValue<string>() == "default")
                        return o["template"]?.GetValue<string>() ?? throw new PeftException($"{file}: chat_template \"default\" has no \"template\" string");
                }
                throw new PeftException($"{file}: chat_template is a list without an entry named \"default\"");
            default:
                throw new PeftException($"{file}: chat_template must be a string or a list of {{name, template}}");
        }
    }

    private static string? ReadToken(JsonObject obj, string key, string file) => obj[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonObject o when o["content"] is JsonValue c && c.TryGetValue(out string? s2) => s2,
        _ => throw new PeftException($"{file}: \"{key}\" must be a string or {{\"content\": string}}"),
    };
}
