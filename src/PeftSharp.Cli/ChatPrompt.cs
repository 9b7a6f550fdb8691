using PeftSharp.Data;
using PeftSharp.Models;
using PeftSharp.Templates;
using PeftSharp.Tokenization;

namespace PeftSharp.Cli;

/// <summary>
/// A conversation rendered through the model's chat template (with the generation prompt, as transformers'
/// apply_chat_template(add_generation_prompt=True)), and the ids that end an assistant turn.
/// </summary>
internal sealed class ChatPrompt(ChatTemplate template, HfTokenizer tokenizer)
{
    public List<ChatMessage> Messages { get; } = [];

    /// <summary>The template's text for the conversation so far, ready for the assistant's reply.</summary>
    public string Render() => template.Render(Messages, addGenerationPrompt: true);

    /// <summary>The rendered conversation as ids; the template writes BOS itself, so no special tokens are added.</summary>
    public int[] Ids() => tokenizer.Encode(Render(), addSpecial: false);

    /// <summary>EOS of the model and tokenizer, the template's eos_token, and the usual end-of-turn tokens the vocabulary has.</summary>
    public HashSet<int> StopIds(CausalLM model)
    {
        var stop = new HashSet<int>(model.Config.EosTokenIds);
        if (tokenizer.EosId is int eos) stop.Add(eos);
        foreach (var t in ChatTurnLocator.DefaultEndOfTurnTokens.Append(template.EosToken ?? ""))
            if (t.Length > 0 && tokenizer.TokenToId(t) is int id) stop.Add(id);
        return stop;
    }

    /// <summary>The model's chat template, or an error saying the model has none.</summary>
    public static ChatPrompt For(string modelDir, HfTokenizer tokenizer) => new(ChatTemplateSource.Load(modelDir), tokenizer);
}

/// <summary>Prints a growing list of generated ids as text: decodes the whole continuation and writes what is new,
/// holding back a multi-byte character split across tokens.</summary>
internal sealed class StreamingText(HfTokenizer tokenizer, TextWriter output)
{
    readonly List<int> _ids = [];
    int _printed;

    public string Text => tokenizer.Decode(_ids.ToArray(), skipSpecial: true);

    public void Add(int id)
    {
        _ids.Add(id);
        var all = Text;
        if (all.Length > _printed && !all.EndsWith('\uFFFD'))
        {
            output.Write(all[_printed..]);
            output.Flush();
            _printed = all.Length;
        }
    }
}
