namespace PeftSharp.Templates;

/// <summary>
/// A compiled template in the Jinja subset used by Hugging Face chat templates, rendered with transformers'
/// settings (trim_blocks, lstrip_blocks, one trailing newline dropped). Values follow Python semantics.
/// Unsupported tags, filters, tests or methods give a <see cref="PeftException"/> naming the feature and line;
/// <c>raise_exception(msg)</c> gives a <see cref="TemplateRaisedException"/> with the template's message.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly List<Stmt> _program;

    public JinjaTemplate(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        _program = JinjaParser.Parse(source);
    }

    /// <summary>Renders with the given variables (strings, numbers, bools, null, dictionaries, lists,
    /// System.Text.Json nodes, <see cref="ChatMessage"/>).</summary>
    public string Render(IReadOnlyDictionary<string, object?> variables) =>
        new JinjaInterpreter(variables).Render(_program);
}
