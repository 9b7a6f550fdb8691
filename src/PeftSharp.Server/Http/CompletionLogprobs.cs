using System.Text.Json.Nodes;
using PeftSharp.Server.Engine;
using PeftSharp.Tokenization;

namespace PeftSharp.Server.Http;

/// <summary>The legacy completions logprobs object: tokens, token_logprobs, top_logprobs, text_offset.</summary>
internal sealed class CompletionLogprobs(HfTokenizer tokenizer, int offset)
{
    readonly JsonArray _tokens = new(), _logprobs = new(), _top = new(), _offsets = new();
    int _offset = offset;

    public void Add(GeneratedToken t)
    {
        string text = tokenizer.Decode([t.Id]);
        _tokens.Add(text);
        _logprobs.Add(t.LogProb);
        var top = new JsonObject();
        foreach (var (id, lp) in t.Top) top[tokenizer.Decode([id])] = lp;
        _top.Add(top);
        _offsets.Add(_offset);
        _offset += text.Length;
    }

    public JsonObject ToJson() => new()
    {
        ["tokens"] = _tokens.DeepClone(), ["token_logprobs"] = _logprobs.DeepClone(), ["top_logprobs"] = _top.DeepClone(), ["text_offset"] = _offsets.DeepClone(),
    };
}
