namespace PeftSharp.Templates;

/// <summary>
/// A compiled template in the Jinja subset used by Hugging Face chat templates, rendered with transformers'
/// settings (trim_blocks, lstrip_blocks, one trailing newline dropped). Values follow Python semantics.
/// Unsupported tags, filters, tests or methods give a <see cref="PeftException"/> naming the feature and line;
/// <c>raise_exception(msg)</c> gives a <see cref="TemplateRaisedException"/> with the template's message.
/// </summary>
internal sealed class JinjaTemplate
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

    /// <summary>True when the template marks assistant text with {% generation %} blocks.</summary>
    public bool HasGenerationBlocks => _program.Any(ContainsGeneration);

    /// <summary>Renders and returns the [Start, End) spans of the {% generation %} blocks in the output
    /// (what transformers' return_assistant_tokens_mask uses).</summary>
    public (string Text, List<(int Start, int End)> GenerationSpans) RenderWithGenerationSpans(IReadOnlyDictionary<string, object?> variables)
    {
        var interpreter = new JinjaInterpreter(variables);
        string text = interpreter.Render(_program);
        return (text, interpreter.GenerationSpans);
    }

    private static bool ContainsGeneration(Stmt s) => s switch
    {
        GenerationStmt => true,
        IfStmt i => i.Branches.Any(b => b.Body.Any(ContainsGeneration)) || (i.Else?.Any(ContainsGeneration) ?? false),
        ForStmt f => f.Body.Any(ContainsGeneration) || (f.Else?.Any(ContainsGeneration) ?? false),
        SetBlockStmt sb => sb.Body.Any(ContainsGeneration),
        MacroStmt m => m.Body.Any(ContainsGeneration),
        _ => false,
    };
}
