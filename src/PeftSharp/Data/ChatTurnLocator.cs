using PeftSharp.Templates;

namespace PeftSharp.Data;

/// <summary>
/// Finds, in a rendered conversation, the characters the model should learn to produce: each assistant turn's
/// content plus the end-of-turn token the template writes right after it.
///
/// A template with {% generation %} blocks (transformers' assistant masks) gives the spans directly. Otherwise
/// (no template cooperation needed):
/// 1. <c>full</c> = the whole conversation rendered without a generation prompt.
/// 2. Start of assistant message k: where the conversation up to k, rendered WITH the generation prompt, ends, when
///    that is a prefix of <c>full</c> (so role headers and e.g. Qwen3's empty think block, which the generation
///    prompt writes, are not trained on, but reasoning the model wrote is). Otherwise (templates that render earlier
///    turns differently once more messages follow, e.g. Mistral putting the system prompt into the last user turn)
///    the content's start, found like its end in step 3 with the marker put in front of the content.
/// 3. End of its content: the conversation is rendered again with a private-use marker character appended to
///    message k's content; the first character where the two renderings differ is where the content ends in
///    <c>full</c> (this also finds the end after the template's strip/trim of the content).
/// 4. If, after optional whitespace, an end-of-turn token follows (the eos token or a known end-of-turn string
///    such as &lt;|eot_id|&gt; or &lt;|im_end|&gt;), it is included, so the model learns to stop.
/// Limits: a template that transforms the content in other ways than stripping/splitting can misplace the
/// boundaries (a template that drops the content entirely is an error); a template writing no end-of-turn token
/// after assistant text gives no trained stop token (add it to the end-of-turn list, or use {% generation %}).
/// </summary>
internal static class ChatTurnLocator
{
    /// <summary>End-of-turn strings of common chat formats, used besides the template's eos token.</summary>
    public static readonly IReadOnlyList<string> DefaultEndOfTurnTokens =
        ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "</s>", "<|eom_id|>"];

    private const string Marker = "\uE000\uE001";

    /// <summary>The rendered text and the [Start, End) character spans to train on, in order.</summary>
    public static (string Text, List<(int Start, int End)> Spans) Locate(ChatTemplate template, IReadOnlyList<ChatMessage> messages,
        IReadOnlyDictionary<string, object?>? variables = null, IReadOnlyList<string>? endOfTurnTokens = null)
    {
        if (template.HasGenerationBlocks)
        {
            // The template marks assistant text itself (transformers' return_assistant_tokens_mask): use its spans.
            var (text, marked) = template.RenderWithGenerationSpans(messages, variables);
            return (text, marked);
        }
        var endTokens = new List<string>(endOfTurnTokens ?? DefaultEndOfTurnTokens);
        if (template.EosToken is { Length: > 0 } eos && !endTokens.Contains(eos)) endTokens.Insert(0, eos);

        string full = template.Render(messages, false, variables);
        var spans = new List<(int, int)>();
        for (int k = 0; k < messages.Count; k++)
        {
            if (messages[k].Role != "assistant") continue;
            var marked = messages.ToList();
            marked[k] = marked[k] with { Content = marked[k].Content + Marker };
            string fullMarked = template.Render(marked, false, variables);
            int contentEnd = CommonPrefixLength(full, fullMarked);
            if (contentEnd == fullMarked.Length)
                throw new PeftException($"cannot locate assistant message {k} in the rendered conversation: the chat template does not write its content");

            string prefix = k == 0 ? "" : template.Render(messages.Take(k).ToList(), true, variables);
            int start;
            if (full.StartsWith(prefix, StringComparison.Ordinal) && prefix.Length <= contentEnd) start = prefix.Length;
            else
            {
                // The template renders earlier turns differently once more messages follow (e.g. Mistral's system
                // prompt goes into the last user turn): find the content's start with a marker in front of it.
                marked[k] = messages[k] with { Content = Marker + messages[k].Content };
                start = CommonPrefixLength(full, template.Render(marked, false, variables));
                if (start > contentEnd)
                    throw new PeftException($"cannot locate assistant message {k} in the rendered conversation: the chat template " +
                                            "changes its content's start, and renders the conversation up to it differently from the whole");
            }

            int end = contentEnd;
            int j = contentEnd;
            while (j < full.Length && char.IsWhiteSpace(full[j])) j++;
            foreach (var tok in endTokens)
            {
                if (string.CompareOrdinal(full, j, tok, 0, tok.Length) == 0) { end = j + tok.Length; break; }
            }
            if (spans.Count > 0 && start < spans[^1].Item2)
                throw new PeftException($"assistant message {k} overlaps the previous assistant turn in the rendered conversation");
            if (end > start) spans.Add((start, end));
        }
        return (full, spans);
    }

    private static int CommonPrefixLength(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }
}
