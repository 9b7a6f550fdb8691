using PeftSharp.Compute;
using PeftSharp.Nn;

namespace PeftSharp.Peft;

/// <summary>
/// What an adapter's forward saves for its backward over one row segment, in buffers of the pass: xa = drop(x)·Aᵀ
/// (n, r), the dropout key, and for DoRA the pre-scaling output (n, out) with the factor f and norm (out).
/// Disposing returns the buffers to the pass.
/// </summary>
internal sealed unsafe class AdapterActivations : IDisposable
{
    readonly BufferPool _pool;
    BufferPool.Lease _xa, _pre, _f, _norm;

    public AdapterActivations(BufferPool pool) => _pool = pool;

    long _floats;

    public int Rows { get; private set; }

    /// <summary>Bytes of what is saved (requested sizes).</summary>
    public long Bytes => 4 * _floats;
    public bool Dropped { get; set; }
    public ulong DropKey { get; set; }

    public float* Xa => _xa.Pointer;
    public float* Pre => _pre.Pointer;
    public float* F => _f.Pointer;
    public float* Norm => _norm.Pointer;

    /// <summary>Sizes the buffers for n rows of a rank-r adapter (DoRA also the n × out ones).</summary>
    public void Ensure(int n, int r, int outFeatures, bool dora)
    {
        Rows = n;
        _floats = (long)n * r + (dora ? (long)n * outFeatures + 2L * outFeatures : 0);
        Need(ref _xa, (long)n * r);
        if (dora)
        {
            Need(ref _pre, (long)n * outFeatures);
            Need(ref _f, outFeatures);
            Need(ref _norm, outFeatures);
        }
    }

    void Need(ref BufferPool.Lease lease, long floats)
    {
        if (lease.IsRented && lease.Floats >= floats) return;
        lease.Dispose();
        lease = _pool.Rent(floats);
    }

    public void Dispose()
    {
        _xa.Dispose(); _pre.Dispose(); _f.Dispose(); _norm.Dispose();
        _floats = 0;
    }
}

/// <summary>A host module's saved activations in one pass: one entry per routing segment.</summary>
internal sealed class HostActivations(BufferPool pool) : ISavedActivations
{
    readonly List<AdapterActivations> _segments = [];

    public long Bytes => _segments.Sum(s => s.Bytes);

    public AdapterActivations Segment(int i)
    {
        while (_segments.Count <= i) _segments.Add(new AdapterActivations(pool));
        return _segments[i];
    }

    public void Dispose()
    {
        foreach (var s in _segments) s.Dispose();
        _segments.Clear();
    }
}
