namespace PeftSharp.Server.Engine;

/// <summary>
/// LongRoPE (Phi-3/3.5 128k) in continuous batching. transformers picks the factor set per forward from its longest
/// sequence, so a step holds only sequences of one regime: those ending within the original context (short factors)
/// or beyond it (long); when both are running, steps alternate between them. A sequence whose cache was built with
/// the short factors and now grows past the original length is recomputed from position 0, as
/// Phi3ForCausalLM.prepare_inputs_for_generation drops the cache at that point.
/// </summary>
internal static class LongRopeStep
{
    /// <summary>The rows sequence <paramref name="s"/> feeds this step: (first position, count).</summary>
    public static (int Start, int Count) Rows(GenerationStream s, int? switchLength)
    {
        if (s.Fed == 0) return (0, s.PromptTokens);
        if (switchLength is int original && s.Fed <= original && s.Fed + 1 > original) return (0, s.Fed + 1);
        return (s.Fed, 1);
    }

    /// <summary>Fills <paramref name="step"/> with the running sequences of this step, in order.</summary>
    public static void Select(List<GenerationStream> running, int? switchLength, bool preferLong, List<GenerationStream> step)
    {
        step.Clear();
        if (switchLength is not int original)
        {
            step.AddRange(running);
            return;
        }
        bool anyLong = false, anyShort = false;
        foreach (var s in running)
            if (IsLong(s, original)) anyLong = true; else anyShort = true;
        bool takeLong = anyLong && (preferLong || !anyShort);
        foreach (var s in running)
            if (IsLong(s, original) == takeLong) step.Add(s);
    }

    static bool IsLong(GenerationStream s, int original)
    {
        var (start, count) = Rows(s, original);
        return start + count > original;
    }
}
