using PeftSharp.Compute;
using PeftSharp.Models;
using PeftSharp.Nn;

namespace PeftSharp.Inference;

/// <summary>Autoregressive generation with a KV cache: prefill the prompt, then sample one token at a time.</summary>
internal static class Generator
{
    /// <summary>
    /// Yields new tokens as they are produced; stops after <paramref name="maxNewTokens"/>, at the context limit, or
    /// after emitting a stop id (EOS), which is yielded too.
    /// </summary>
    public static IEnumerable<int> Generate(CausalLM model, ComputeContext compute, AdapterRouting routing, IReadOnlyList<int> prompt, int maxNewTokens, SamplingOptions options,
        IReadOnlyCollection<int> stopIds)
    {
        if (prompt.Count == 0) throw new PeftException("the prompt is empty: give at least one token (e.g. BOS)");
        if (maxNewTokens < 0) throw new PeftException($"max new tokens must be ≥ 0, got {maxNewTokens}");
        options.Validate();
        int limit = (int)Math.Min(model.Rope.MaxPositions, (long)prompt.Count + maxNewTokens);
        if (prompt.Count >= model.Rope.MaxPositions)
            throw new PeftException($"the prompt has {prompt.Count} tokens; the model's context is {model.Rope.MaxPositions}");
        return Run(model, compute, routing, prompt.ToArray(), limit, options, stopIds);
    }

    /// <summary>True when a generation of <paramref name="generated"/> new tokens after a prompt of
    /// <paramref name="promptLength"/> stopped because the model's context was full (not at EOS or the asked count).</summary>
    public static bool HitContextLimit(CausalLM model, int promptLength, int generated, int maxNewTokens) =>
        generated < maxNewTokens && promptLength + generated >= model.Rope.MaxPositions;

    static IEnumerable<int> Run(CausalLM model, ComputeContext compute, AdapterRouting routing, int[] prompt, int limit, SamplingOptions options, IReadOnlyCollection<int> stopIds)
    {
        using var session = new InferenceSession(model, compute, limit, routing);
        var sampler = new Sampler(options);
        var logits = new float[model.Config.VocabSize];
        var context = new List<int>(prompt);
        session.Feed(prompt, logits);
        while (session.Length < limit)
        {
            int next = sampler.Next(logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(context));
            context.Add(next);
            yield return next;
            if (stopIds.Contains(next) || session.Length + 1 > limit) yield break;
            session.Feed([next], logits);
        }
    }
}
