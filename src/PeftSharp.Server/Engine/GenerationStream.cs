using PeftSharp.Models;
using System.Threading.Channels;
using PeftSharp.Inference;
using PeftSharp.Nn;

namespace PeftSharp.Server.Engine;

/// <summary>
/// A submitted request's output: the tokens as the scheduler produces them, then why it ended. Cancelling (the
/// caller's token, or <see cref="Cancel"/> when a stop string matched) takes the sequence out of the batch at the next
/// step and frees its slot and cache.
/// </summary>
public sealed class GenerationStream
{
    readonly Channel<GeneratedToken> _tokens = Channel.CreateUnbounded<GeneratedToken>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    readonly CancellationTokenSource _cancel;

    internal GenerationStream(GenerationRequest request, int maxNew, RowSegment route, IDisposable use, CancellationToken ct)
    {
        Request = request;
        MaxNew = maxNew;
        Route = route;
        Use = use;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Sampler = new Sampler(request.Sampling);
        Context = new List<int>(request.Prompt);
    }

    public GenerationRequest Request { get; }

    /// <summary>Tokens in the prompt.</summary>
    public int PromptTokens => Request.Prompt.Count;

    /// <summary>"stop" or "length" once the stream has ended normally (null while running or when cancelled).</summary>
    public string? FinishReason { get; private set; }

    /// <summary>The generated tokens, as they come.</summary>
    public IAsyncEnumerable<GeneratedToken> ReadAllAsync(CancellationToken ct = default) => _tokens.Reader.ReadAllAsync(ct);

    /// <summary>Stops generating (the tokens already produced stay readable).</summary>
    public void Cancel() => _cancel.Cancel();

    // ---- scheduler state (scheduler thread only) ----
    internal int MaxNew { get; }
    internal RowSegment Route { get; }
    internal IDisposable Use { get; }
    internal Sampler Sampler { get; }
    internal List<int> Context { get; }
    internal KvCacheAttention? Cache { get; set; }
    internal int Fed { get; set; }
    internal int Produced { get; set; }
    internal long Order { get; set; }
    internal CancellationToken Cancelled => _cancel.Token;

    internal void Emit(GeneratedToken t) => _tokens.Writer.TryWrite(t);

    /// <summary>Ends the stream (reason null: cancelled or failed, <paramref name="error"/> rethrown to the reader) and
    /// releases the sequence's cache and adapter hold.</summary>
    internal void Finish(string? reason, Exception? error = null)
    {
        FinishReason = reason;
        Cache?.Dispose();
        Cache = null;
        Use.Dispose();
        _tokens.Writer.TryComplete(error);
    }
}
