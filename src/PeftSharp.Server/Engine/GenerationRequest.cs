using PeftSharp.Inference;

namespace PeftSharp.Server.Engine;

/// <summary>What to generate: prompt token ids, the adapter (null: the base), at most MaxNewTokens new tokens
/// (fewer at a stop id or the context's end), how to sample, and how many top alternatives' log-probabilities to report.</summary>
public sealed record GenerationRequest(IReadOnlyList<int> Prompt, string? Adapter, int MaxNewTokens, SamplingOptions Sampling,
    int TopLogprobs = 0);

/// <summary>One generated token: its id, its log-probability under the model (log-softmax of the raw logits), and the
/// most likely alternatives (id, log-probability) when asked for; IsStop marks a stop id (EOS).</summary>
public sealed record GeneratedToken(int Id, double LogProb, IReadOnlyList<(int Id, double LogProb)> Top, bool IsStop);

/// <summary>Why generation ended, as OpenAI's finish_reason: "stop" (a stop id or a stop string) or "length".</summary>
public static class FinishReasons
{
    public const string Stop = "stop";
    public const string Length = "length";
}
