using System.Text;

namespace PeftSharp.Export;

/// <summary>
/// An Ollama Modelfile for an exported GGUF: FROM, optional ADAPTER, TEMPLATE and PARAMETER stop. Ollama templates are
/// Go templates, not Jinja, so the chat template is recognised by its markers (ChatML as Qwen uses it, Llama 3 headers,
/// Llama 2 [INST]) and the equivalent Go template written; for any other template TEMPLATE is left out (Ollama then
/// falls back to the GGUF's own tokenizer.chat_template) and the caller is told.
/// </summary>
internal static class OllamaModelfile
{
    public sealed record Result(string Text, bool HasTemplate, string? Family);

    public static Result Build(string from, string? adapter, string? chatTemplate, string? eosToken)
    {
        var (family, template, stops) = Convert(chatTemplate);
        var sb = new StringBuilder();
        sb.Append("FROM ").Append(from).Append('\n');
        if (adapter != null) sb.Append("ADAPTER ").Append(adapter).Append('\n');
        if (template != null) sb.Append("TEMPLATE \"\"\"").Append(template).Append("\"\"\"\n");
        foreach (var s in stops.Append(eosToken).Where(s => !string.IsNullOrEmpty(s)).Distinct())
            sb.Append("PARAMETER stop \"").Append(s!.Replace("\"", "\\\"")).Append("\"\n");
        return new Result(sb.ToString(), template != null, family);
    }

    internal static (string? Family, string? Template, string[] Stops) Convert(string? jinja)
    {
        if (jinja == null) return (null, null, []);
        if (jinja.Contains("<|im_start|>"))
            return ("chatml",
                "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
                ["<|im_end|>", "<|im_start|>"]);
        if (jinja.Contains("<|start_header_id|>"))
            return ("llama3",
                "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
                ["<|eot_id|>", "<|start_header_id|>"]);
        if (jinja.Contains("[INST]"))
            return ("llama2",
                "[INST] {{ if .System }}<<SYS>>\n{{ .System }}\n<</SYS>>\n\n{{ end }}{{ .Prompt }} [/INST]",
                ["[INST]", "[/INST]"]);
        return (null, null, []);
    }
}
