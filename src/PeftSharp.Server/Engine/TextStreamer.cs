using PeftSharp.Tokenization;

namespace PeftSharp.Server.Engine;

/// <summary>A piece of generated text: the token that produced it (null for the final flush) and the new text.</summary>
public sealed record TextPiece(GeneratedToken? Token, string Text);

/// <summary>
/// Turns a <see cref="GenerationStream"/>'s tokens into text as it grows: the whole continuation is decoded again at
/// each token and only what is new goes out, holding back a split multi-byte character and any tail that could be
/// the start of a stop string. A stop string ends generation (the stream is cancelled; finish_reason "stop") and is
/// not part of the text, as in OpenAI's API.
/// </summary>
public sealed class TextStreamer(HfTokenizer tokenizer, IReadOnlyList<string> stops)
{
    readonly List<int> _ids = new();
    int _sent;

    /// <summary>The text so far (after a stop string: up to it).</summary>
    public string Text { get; private set; } = "";

    /// <summary>Tokens generated (the stop token included).</summary>
    public int CompletionTokens => _ids.Count;

    /// <summary>"stop" or "length" after the stream has been read to its end.</summary>
    public string? FinishReason { get; private set; }

    public async IAsyncEnumerable<TextPiece> ReadAsync(GenerationStream stream, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        int hold = stops.Count == 0 ? 0 : stops.Max(s => s.Length) - 1;
        await foreach (var t in stream.ReadAllAsync(ct))
        {
            _ids.Add(t.Id);
            var all = tokenizer.Decode(_ids.ToArray(), skipSpecial: true);
            int cut = FirstStop(all);
            if (cut >= 0)
            {
                Text = all[..cut];
                stream.Cancel();
                FinishReason = FinishReasons.Stop;
                yield return new TextPiece(t, Take(Text.Length));
                yield break;
            }
            Text = all;
            int safe = all.EndsWith('\uFFFD') ? all.Length - 1 : all.Length;
            yield return new TextPiece(t, Take(Math.Max(_sent, safe - hold)));
        }
        FinishReason = stream.FinishReason ?? throw new OperationCanceledException("the generation was cancelled");
        yield return new TextPiece(null, Take(Text.Length));
    }

    string Take(int upTo)
    {
        if (upTo <= _sent) return "";
        var s = Text[_sent..upTo];
        _sent = upTo;
        return s;
    }

    int FirstStop(string text)
    {
        int best = -1;
        foreach (var s in stops)
        {
            if (s.Length == 0) continue;
            int i = text.IndexOf(s, StringComparison.Ordinal);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best;
    }
}
