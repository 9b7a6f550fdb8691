namespace PeftSharp.Templates;

/// <summary>
/// A model's chat template with the special tokens it is rendered with (from tokenizer_config.json, see
/// <see cref="ChatTemplateSource"/>). Rendering a conversation gives the exact text the model was trained on.
/// </summary>
public sealed class ChatTemplate
{
    private readonly JinjaTemplate _template;

    /// <summary>The Jinja source of the template, as read.</summary>
    public string Source { get; }
    /// <summary>The bos_token string the template sees, or null when the tokenizer has none.</summary>
    public string? BosToken { get; }
    /// <summary>The eos_token string the template sees, or null when the tokenizer has none.</summary>
    public string? EosToken { get; }

    /// <summary>Parses <paramref name="source"/>; a syntax error is a <see cref="PeftException"/>.</summary>
    /// <param name="source">The Jinja template (tokenizer_config.json's chat_template).</param>
    /// <param name="bosToken">Value of the template's bos_token variable, or null to leave it unset.</param>
    /// <param name="eosToken">Value of the template's eos_token variable, or null to leave it unset.</param>
    public ChatTemplate(string source, string? bosToken, string? eosToken)
    {
        Source = source;
        BosToken = bosToken;
        EosToken = eosToken;
        _template = new JinjaTemplate(source);
    }

    /// <summary>Renders the conversation. <paramref name="extra"/> adds variables (e.g. enable_thinking, tools,
    /// pad_token); bos_token/eos_token come from this object unless <paramref name="extra"/> sets them.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false,
        IReadOnlyDictionary<string, object?>? extra = null) =>
        _template.Render(Variables(messages, addGenerationPrompt, extra));

    /// <summary>True when the template marks assistant text with {% generation %} blocks.</summary>
    public bool HasGenerationBlocks => _template.HasGenerationBlocks;

    /// <summary>Renders and returns where the template's {% generation %} blocks landed.</summary>
    public (string Text, List<(int Start, int End)> Spans) RenderWithGenerationSpans(IReadOnlyList<ChatMessage> messages,
        IReadOnlyDictionary<string, object?>? extra = null) =>
        _template.RenderWithGenerationSpans(Variables(messages, false, extra));

    private Dictionary<string, object?> Variables(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt,
        IReadOnlyDictionary<string, object?>? extra)
    {
        var vars = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = messages,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        if (BosToken != null) vars["bos_token"] = BosToken;
        if (EosToken != null) vars["eos_token"] = EosToken;
        if (extra != null) foreach (var (k, v) in extra) vars[k] = v;
        return vars;
    }

    /// <summary>One-shot rendering of a template string.</summary>
    internal static string Render(string template, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt,
        IReadOnlyDictionary<string, object?>? extra = null)
    {
        var vars = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = messages,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        if (extra != null) foreach (var (k, v) in extra) vars[k] = v;
        return new JinjaTemplate(template).Render(vars);
    }
}
