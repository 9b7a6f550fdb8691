namespace PeftSharp.Server.Engine;

/// <summary>Limits of a <see cref="ServeEngine"/>.</summary>
public sealed record EngineOptions
{
    /// <summary>Sequences decoded together at most (the running batch).</summary>
    public int MaxBatch { get; init; } = 16;

    /// <summary>Requests waiting for a batch slot at most; beyond it a request is refused (<see cref="EngineBusyException"/>).</summary>
    public int MaxQueue { get; init; } = 64;

    /// <summary>Prompt rows fed in one step at most (joining sequences wait for the next step beyond it;
    /// a longer prompt runs when it is alone).</summary>
    public int MaxStepTokens { get; init; } = 2048;

    /// <summary>Context length used (positions): the model's max_position_embeddings, capped here.</summary>
    public int? MaxContext { get; init; }

    internal void Validate()
    {
        if (MaxBatch < 1) throw new PeftException($"max batch must be ≥ 1, got {MaxBatch}");
        if (MaxQueue < 0) throw new PeftException($"max queue must be ≥ 0, got {MaxQueue}");
        if (MaxStepTokens < 1) throw new PeftException($"max step tokens must be ≥ 1, got {MaxStepTokens}");
        if (MaxContext is < 2) throw new PeftException($"max context must be ≥ 2, got {MaxContext}");
    }
}

/// <summary>The engine's queue is full: try again later (HTTP 429).</summary>
public sealed class EngineBusyException(string message) : Exception(message);
