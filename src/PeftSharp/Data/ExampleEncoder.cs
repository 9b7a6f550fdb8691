using PeftSharp.Templates;
using PeftSharp.Tokenization;

namespace PeftSharp.Data;

internal sealed class EncodeOptions
{
    /// <summary>Train on every token (prompt and user turns too) instead of completions / assistant turns only.</summary>
    public bool TrainOnPrompt { get; init; }
    /// <summary>Append the tokenizer's EOS (trained on) after text and completions, so the model learns to stop.</summary>
    public bool AppendEos { get; init; } = true;
    /// <summary>End-of-turn strings trained on after assistant turns; null: <see cref="ChatTurnLocator.DefaultEndOfTurnTokens"/>.</summary>
    public IReadOnlyList<string>? EndOfTurnTokens { get; init; }
    /// <summary>Extra variables for the chat template (e.g. enable_thinking).</summary>
    public IReadOnlyDictionary<string, object?>? TemplateVariables { get; init; }
}

/// <summary>
/// Turns records into token ids and labels (−100 on tokens not trained on).
/// <list type="bullet">
/// <item>text: <c>Encode(text, addSpecial: true)</c> (BOS as the tokenizer's post-processor adds it) + EOS; all trained.</item>
/// <item>prompt/completion and Alpaca: the special prefix the tokenizer adds (BOS), then the prompt and the completion
/// each encoded on its own without specials, then EOS; prompt masked, completion and EOS trained.</item>
/// <item>messages: the conversation rendered by the chat template (which writes BOS itself, as transformers'
/// apply_chat_template does; no specials are added), cut into segments at the trained spans found by
/// <see cref="ChatTurnLocator"/>, each segment encoded on its own.</item>
/// </list>
/// Encoding segments separately makes the labels exact for the ids the model is given; at a segment boundary
/// those ids can differ from encoding the whole string at once (a BPE merge across the boundary, or a
/// SentencePiece tokenizer's dummy-prefix space), which is the usual prompt/completion convention.
/// </summary>
internal sealed class ExampleEncoder
{
    private readonly ITokenizer _tok;
    private readonly ChatTemplate? _template;
    private readonly EncodeOptions _o;

    public ExampleEncoder(ITokenizer tokenizer, ChatTemplate? chatTemplate, EncodeOptions? options = null)
    {
        _tok = tokenizer;
        _template = chatTemplate;
        _o = options ?? new EncodeOptions();
    }

    /// <summary>Encodes one record; problems are <see cref="PeftException"/> "file:line: ...".</summary>
    public EncodedExample Encode(TrainingExample ex)
    {
        var ids = new List<int>();
        var labels = new List<int>();
        switch (ex.Format)
        {
            case DatasetFormat.Text:
            {
                var t = _tok.Encode(ex.Text!, addSpecial: true);
                Add(ids, labels, t, trained: true);
                AddEos(ids, labels);
                break;
            }
            case DatasetFormat.PromptCompletion:
                EncodePromptCompletion(ex.Prompt!, ex.Completion!, ids, labels);
                break;
            case DatasetFormat.Alpaca:
                EncodePromptCompletion(AlpacaPrompt.Format(ex.Instruction!, ex.Input), ex.Output!, ids, labels);
                break;
            case DatasetFormat.Messages:
                EncodeChat(ex, ids, labels);
                break;
            default:
                throw new PeftException($"{ex.Location}: unknown record format {ex.Format}");
        }
        return new EncodedExample { Ids = ids.ToArray(), Labels = labels.ToArray(), File = ex.File, Line = ex.Line };
    }

    private void Add(List<int> ids, List<int> labels, int[] segment, bool trained)
    {
        bool train = trained || _o.TrainOnPrompt;
        foreach (int id in segment)
        {
            ids.Add(id);
            labels.Add(train ? id : EncodedExample.IgnoreIndex);
        }
    }

    private void AddEos(List<int> ids, List<int> labels)
    {
        if (!_o.AppendEos || _tok.EosId is not int eos) return;
        if (ids.Count > 0 && ids[^1] == eos) { labels[^1] = eos; return; }
        ids.Add(eos);
        labels.Add(eos);
    }

    /// <summary>The ids the tokenizer's post-processor puts before the text (e.g. BOS).</summary>
    private int[] SpecialPrefix(string text, int[] plain)
    {
        var withSpecial = _tok.Encode(text, addSpecial: true);
        if (plain.Length == 0)
            return _tok.BosId is int bos && withSpecial.Length > 0 && withSpecial[0] == bos ? [bos] : [];
        for (int p = 0; p + plain.Length <= withSpecial.Length; p++)
        {
            if (withSpecial.AsSpan(p, plain.Length).SequenceEqual(plain)) return withSpecial[..p];
        }
        return _tok.BosId is int b && withSpecial.Length > 0 && withSpecial[0] == b ? [b] : [];
    }

    private void EncodePromptCompletion(string prompt, string completion, List<int> ids, List<int> labels)
    {
        var plainPrompt = _tok.Encode(prompt, addSpecial: false);
        Add(ids, labels, SpecialPrefix(prompt, plainPrompt), trained: false);
        Add(ids, labels, plainPrompt, trained: false);
        Add(ids, labels, _tok.Encode(completion, addSpecial: false), trained: true);
        AddEos(ids, labels);
    }

    private void EncodeChat(TrainingExample ex, List<int> ids, List<int> labels)
    {
        if (_template == null)
            throw new PeftException($"{ex.Location}: a \"messages\" record needs a chat template, and the model's tokenizer_config.json has none; " +
                                    "give a template or use text / prompt_completion records");
        string text;
        List<(int Start, int End)> spans;
        try
        {
            (text, spans) = ChatTurnLocator.Locate(_template, ex.Messages!, _o.TemplateVariables, _o.EndOfTurnTokens);
        }
        catch (TemplateRaisedException e)
        {
            throw new PeftException($"{ex.Location}: the chat template rejected this conversation: {e.Message}");
        }
        catch (PeftException e)
        {
            throw new PeftException($"{ex.Location}: {e.Message}");
        }
        int pos = 0;
        foreach (var (start, end) in spans)
        {
            if (start > pos) Add(ids, labels, _tok.Encode(text[pos..start], addSpecial: false), trained: false);
            Add(ids, labels, _tok.Encode(text[start..end], addSpecial: false), trained: true);
            pos = end;
        }
        if (pos < text.Length) Add(ids, labels, _tok.Encode(text[pos..], addSpecial: false), trained: false);
    }
}
