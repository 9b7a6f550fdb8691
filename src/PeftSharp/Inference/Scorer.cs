using System.Text.Json.Nodes;
using PeftSharp.Compute;
using PeftSharp.Models;
using PeftSharp.Nn;

namespace PeftSharp.Inference;

/// <summary>Per-token log-probabilities of a sequence under a model (the first token has none).</summary>
/// <param name="Ids">The scored token ids.</param>
/// <param name="LogProbs">Natural-log probability of each token given those before it; null for the first.</param>
public sealed record ScoreResult(int[] Ids, double?[] LogProbs)
{
    /// <summary>Σ log p over the scored tokens.</summary>
    public double Total => LogProbs.Sum(x => x ?? 0);
    /// <summary>Tokens with a log-probability (all but the first).</summary>
    public int Scored => LogProbs.Count(x => x.HasValue);
    /// <summary>exp(−<see cref="Total"/> / <see cref="Scored"/>); NaN when nothing was scored.</summary>
    public double Perplexity => Scored == 0 ? double.NaN : Math.Exp(-Total / Scored);

    /// <summary>{"ids", "logprobs" (null for the first token), "total", "perplexity"}, numbers rounded to 6 decimals.</summary>
    public string ToJson() => new JsonObject
    {
        ["ids"] = new JsonArray(Ids.Select(i => (JsonNode)i).ToArray()),
        ["logprobs"] = new JsonArray(LogProbs.Select((l, i) => l is { } v
            ? (JsonNode)Math.Round(PeftSharp.IO.FiniteJson.Check(v, $"the log-probability of token {i} (id {Ids[i]})"), 6) : null).ToArray()),
        ["total"] = Math.Round(PeftSharp.IO.FiniteJson.Check(Total, "the total log-probability"), 6),
        ["perplexity"] = Scored == 0 ? null : Math.Round(PeftSharp.IO.FiniteJson.Check(Perplexity, "the perplexity"), 6),
    }.ToJsonString();
}

internal static class Scorer
{
    /// <summary>Scores in chunks through a KV cache so memory stays O(chunk × vocab); the same numbers as one forward
    /// over the whole sequence (LongRoPE: its factor set is the whole length's from the first chunk).</summary>
    public static ScoreResult Score(CausalLM model, ComputeContext compute, AdapterRouting routing, int[] ids, int chunk = 64)
    {
        int V = model.Config.VocabSize;
        var logprobs = new double?[ids.Length];
        using var session = new InferenceSession(model, compute, Math.Max(1, ids.Length), routing) { WholeLength = ids.Length };
        var logits = new float[Math.Min(chunk, ids.Length) * V];
        for (int start = 0; start < ids.Length; start += chunk)
        {
            int n = Math.Min(chunk, ids.Length - start);
            session.Feed(ids.AsSpan(start, n), Span<float>.Empty, logits.AsSpan(0, n * V));
            for (int i = 0; i < n; i++)
            {
                int next = start + i + 1;
                if (next < ids.Length) logprobs[next] = LmHead.LogProb(logits.AsSpan(i * V, V), ids[next]);
            }
        }
        return new ScoreResult(ids, logprobs);
    }
}
