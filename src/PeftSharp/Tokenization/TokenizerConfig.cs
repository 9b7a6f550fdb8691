using System.Text.Json;

namespace PeftSharp.Tokenization;

/// <summary>
/// The parts of a Hugging Face tokenizer_config.json other code needs. Token strings may be written as plain strings
/// or as {"content": …} objects; a list of named chat templates yields the one named "default" (else the first).
/// </summary>
internal sealed record TokenizerConfig
{
    public string? ChatTemplate { get; init; }
    public string? BosToken { get; init; }
    public string? EosToken { get; init; }
    public string? PadToken { get; init; }
    public string? UnkToken { get; init; }
    /// <summary>tokenizer_class, e.g. "LlamaTokenizer", "PreTrainedTokenizerFast", "Qwen2Tokenizer".</summary>
    public string? TokenizerClass { get; init; }
    public bool? AddBosToken { get; init; }
    public bool? AddEosToken { get; init; }
    /// <summary>model_max_length; null when absent or the "unbounded" sentinel (≥ 1e20) files use.</summary>
    public long? ModelMaxLength { get; init; }

    public static TokenizerConfig Empty { get; } = new();

    public static TokenizerConfig Load(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw new PeftException($"{path}: tokenizer_config.json not found"); }
        try
        {
            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true });
            return Parse(doc.RootElement, path);
        }
        catch (JsonException e)
        {
            throw new PeftException($"{path}: not valid JSON (line {e.LineNumber + 1}): {e.Message}", e);
        }
    }

    public static TokenizerConfig Parse(JsonElement root, string file)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new PeftException($"{file}: expected a JSON object at the top level");
        return new TokenizerConfig
        {
            ChatTemplate = ParseChatTemplate(JsonUtil.Prop(root, "chat_template"), file),
            BosToken = TokenString(JsonUtil.Prop(root, "bos_token"), file, "bos_token"),
            EosToken = TokenString(JsonUtil.Prop(root, "eos_token"), file, "eos_token"),
            PadToken = TokenString(JsonUtil.Prop(root, "pad_token"), file, "pad_token"),
            UnkToken = TokenString(JsonUtil.Prop(root, "unk_token"), file, "unk_token"),
            TokenizerClass = JsonUtil.String(root, "tokenizer_class"),
            AddBosToken = OptionalBool(JsonUtil.Prop(root, "add_bos_token"), file, "add_bos_token"),
            AddEosToken = OptionalBool(JsonUtil.Prop(root, "add_eos_token"), file, "add_eos_token"),
            ModelMaxLength = MaxLength(JsonUtil.Prop(root, "model_max_length")),
        };
    }

    static string? TokenString(JsonElement e, string file, string key) => e.ValueKind switch
    {
        JsonValueKind.Undefined or JsonValueKind.Null => null,
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Object when e.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
        _ => throw new PeftException($"{file}: \"{key}\" must be a string or an object with \"content\", got {JsonUtil.Short(e)}"),
    };

    static bool? OptionalBool(JsonElement e, string file, string key) => e.ValueKind switch
    {
        JsonValueKind.Undefined or JsonValueKind.Null => null,
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new PeftException($"{file}: \"{key}\" must be true or false, got {JsonUtil.Short(e)}"),
    };

    static long? MaxLength(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Number) return null;
        double v = e.GetDouble();
        return v >= 1e18 ? null : (long)v;
    }

    static string? ParseChatTemplate(JsonElement e, string file)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null: return null;
            case JsonValueKind.String: return e.GetString();
            case JsonValueKind.Array:
            {
                string? first = null;
                foreach (var item in e.EnumerateArray())
                {
                    string? name = JsonUtil.String(item, "name"), template = JsonUtil.String(item, "template");
                    if (name == null || template == null)
                        throw new PeftException($"{file}: chat_template list entries need \"name\" and \"template\" strings, got {JsonUtil.Short(item)}");
                    if (name == "default") return template;
                    first ??= template;
                }
                return first;
            }
            default: throw new PeftException($"{file}: \"chat_template\" must be a string or a list of {{name, template}}, got {JsonUtil.Short(e)}");
        }
    }
}
