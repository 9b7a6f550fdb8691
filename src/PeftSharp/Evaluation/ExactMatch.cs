using PeftSharp.Data;
using PeftSharp.Inference;
using PeftSharp.Models;
using PeftSharp.Tokenization;

namespace PeftSharp.Evaluation;

/// <summary>One example's prompt, the expected completion and what the model generated for it.</summary>
internal sealed record GenerationSample(string Prompt, string Expected, string Generated, bool Match);

internal sealed record ExactMatchResult(int Examples, int Matches, IReadOnlyList<GenerationSample> Samples)
{
    public double Rate => Examples == 0 ? double.NaN : (double)Matches / Examples;
}

/// <summary>
/// The task metric for completion-style data: greedy-decode each example's prompt (the tokens before its first
/// trained token) and compare the generated text with the trained completion (EOS removed, whitespace trimmed).
/// </summary>
internal static class ExactMatch
{
    public static ExactMatchResult Evaluate(CausalLM model, Compute.ComputeContext compute, Nn.AdapterRouting routing, ITokenizer tokenizer, IReadOnlyList<EncodedExample> examples,
        int maxExamples = 64, int extraTokens = 8)
    {
        var samples = new List<GenerationSample>();
        int matches = 0, n = 0;
        var stop = new HashSet<int>(model.Config.EosTokenIds);
        if (tokenizer.EosId is int eos) stop.Add(eos);
        foreach (var ex in examples)
        {
            if (n >= maxExamples) break;
            int first = Array.FindIndex(ex.Labels, l => l != EncodedExample.IgnoreIndex);
            if (first <= 0) continue;   // no prompt (plain text) → no completion task
            var prompt = ex.Ids[..first];
            var expectedIds = ex.Ids[first..].Where((id, i) => ex.Labels[first + i] != EncodedExample.IgnoreIndex && !stop.Contains(id)).ToArray();
            int budget = expectedIds.Length + extraTokens;
            if (prompt.Length + budget > model.Rope.MaxPositions) continue;
            var generated = Generator.Generate(model, compute, routing, prompt, budget, SamplingOptions.Greedy, stop).Where(id => !stop.Contains(id)).ToArray();
            string exp = tokenizer.Decode(expectedIds, skipSpecial: true).Trim();
            string got = tokenizer.Decode(generated, skipSpecial: true).Trim();
            bool match = exp == got;
            if (match) matches++;
            n++;
            samples.Add(new GenerationSample(tokenizer.Decode(prompt, skipSpecial: true), exp, got, match));
        }
        return new ExactMatchResult(n, matches, samples);
    }
}
