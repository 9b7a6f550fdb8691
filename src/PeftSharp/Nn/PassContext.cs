using PeftSharp.Compute;

namespace PeftSharp.Nn;

/// <summary>
/// The state of one pass over a model (a training step, a scoring call, a generation session): its compute context,
/// which adapter applies to which rows, dropout keys, and everything a forward saves for its backward, adapter
/// activations included. Modules keep none of it, so one loaded model serves any number of concurrent passes.
/// A pass is used by one thread at a time.
/// </summary>
internal sealed class PassContext : IDisposable
{
    readonly Dictionary<object, ISavedActivations> _saved = new(ReferenceEqualityComparer.Instance);

    public PassContext(ComputeContext compute, AdapterRouting routing)
    {
        Compute = compute;
        Routing = routing;
    }

    public ComputeContext Compute { get; }
    public IComputeBackend Kernels => Compute.Backend;

    /// <summary>Training forward: dropout on, activations saved for backward.</summary>
    public bool Training { get; set; }

    /// <summary>Which adapter each row of the pass uses.</summary>
    public AdapterRouting Routing { get; set; }

    /// <summary>Dropout masks are a pure function of (seed, step, module): set per micro-step by the trainer.</summary>
    public ulong DropoutSeed { get; set; }
    public ulong DropoutStep { get; set; }

    /// <summary>Transient and saved buffers of this pass (returned to it, reused by the next layer or step).</summary>
    public BufferPool Buffers { get; } = new();

    long _peakSaved;

    /// <summary>Bytes of saved activations held now (their requested sizes).</summary>
    public long SavedBytes => _saved.Values.Sum(s => s.Bytes);

    /// <summary>The most <see cref="SavedBytes"/> this pass has held (with recompute: one block's adapters).</summary>
    public long PeakSavedBytes => Math.Max(_peakSaved, SavedBytes);

    /// <summary>Records the high-water mark (modules call this after saving).</summary>
    public void NoteSaved() => _peakSaved = Math.Max(_peakSaved, SavedBytes);

    /// <summary>What <paramref name="module"/> saved in this pass, created on first use.</summary>
    public T Saved<T>(object module, Func<T> create) where T : class, ISavedActivations
    {
        if (_saved.TryGetValue(module, out var s)) return (T)s;
        var made = create();
        _saved[module] = made;
        return made;
    }

    /// <summary>What <paramref name="module"/> saved, or null (nothing saved yet, or released).</summary>
    public T? TryGetSaved<T>(object module) where T : class, ISavedActivations =>
        _saved.TryGetValue(module, out var s) ? (T)s : null;

    /// <summary>Releases what the modules saved (activation recompute: they are saved again before their backward).</summary>
    public void Release(IEnumerable<object> modules)
    {
        NoteSaved();
        foreach (var m in modules)
            if (_saved.Remove(m, out var s)) s.Dispose();
    }

    /// <summary>Releases what one module saved.</summary>
    public void Release(object module)
    {
        NoteSaved();
        if (_saved.Remove(module, out var s)) s.Dispose();
    }

    /// <summary>Bytes this pass holds in its buffers (saved activations and scratch).</summary>
    public long Bytes => Buffers.Bytes;

    public void Dispose()
    {
        foreach (var s in _saved.Values) s.Dispose();
        _saved.Clear();
        Buffers.Dispose();
    }
}

/// <summary>Activations a module saved in a pass for its backward; disposing returns their buffers to the pass.</summary>
internal interface ISavedActivations : IDisposable
{
    /// <summary>Bytes saved (requested sizes, not the pool blocks that hold them).</summary>
    long Bytes { get; }
}
