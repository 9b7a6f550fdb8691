using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>
/// Where a decoder block's attention finds its keys and values: the block writes this pass's new keys/values where
/// the memory says, then asks it to attend. Training and scoring over packed batches keep them in the block's saved
/// activations (<see cref="BatchAttention"/>); generation keeps past positions in a cache (<see cref="KvCacheAttention"/>).
/// </summary>
internal interface IAttentionMemory
{
    /// <summary>Where layer <paramref name="layer"/>'s keys (n, Hkv·D) for the pass's n new rows go (after RoPE).</summary>
    Span<float> Keys(int layer, BlockActivations a, int n);

    /// <summary>Where its values (n, Hkv·D) go.</summary>
    Span<float> Values(int layer, BlockActivations a, int n);

    /// <summary>a.Attn (n, Hq·D) = attention of the n queries in a.Q over the keys and values this memory holds.</summary>
    void Attend(PassContext pass, int layer, BlockActivations a, int n);
}

/// <summary>Causal attention within each row of a (batch × seq) batch, packed sequences kept apart by segment ids
/// (empty: no packing); keys, values and the log-sum-exp stay in the activations for the backward.</summary>
internal readonly ref struct BatchAttention(ModelConfig c, ReadOnlySpan<int> segmentIds, int batch, int seq) : IAttentionMemory
{
    readonly ReadOnlySpan<int> _segmentIds = segmentIds;

    public Span<float> Keys(int layer, BlockActivations a, int n) => a.K.Floats[..(n * c.NumKvHeads * c.HeadDim)];
    public Span<float> Values(int layer, BlockActivations a, int n) => a.V.Floats[..(n * c.NumKvHeads * c.HeadDim)];

    public void Attend(PassContext pass, int layer, BlockActivations a, int n) =>
        pass.Kernels.AttentionForward(a.Attn.Floats, a.Lse.Floats, a.Q.Floats, a.K.Floats, a.V.Floats, _segmentIds, batch, seq,
            c.NumHeads, c.NumKvHeads, c.HeadDim, c.AttentionWindow(layer));
}

/// <summary>
/// One sequence's keys and values per layer (after RoPE): the pass's rows are the positions Start … Start+n−1 and
/// attend to everything before them. A full-attention layer keeps every position (capacity rows); a sliding-window
/// layer keeps only its window (a <see cref="SlidingKvBuffer"/> of window − 1 + slack rows) once the capacity is
/// larger than that, so its memory no longer grows with the context.
/// </summary>
internal sealed class KvCacheAttention : IAttentionMemory, IDisposable
{
    readonly ModelConfig _c;
    readonly Tensor?[] _k, _v;           // full layers: (capacity, Hkv·D); null where the layer slides
    readonly SlidingKvBuffer?[] _sliding;

    public KvCacheAttention(ModelConfig c, int capacity)
    {
        _c = c;
        Capacity = capacity;
        int kvd = c.NumKvHeads * c.HeadDim;
        _k = new Tensor?[c.NumLayers];
        _v = new Tensor?[c.NumLayers];
        _sliding = new SlidingKvBuffer?[c.NumLayers];
        for (int l = 0; l < c.NumLayers; l++)
        {
            int window = c.AttentionWindow(l);
            if (window > 0 && SlidingKvBuffer.RowsFor(window) < capacity) _sliding[l] = new SlidingKvBuffer(window, kvd);
            else
            {
                _k[l] = new Tensor(DType.F32, capacity, kvd);
                _v[l] = new Tensor(DType.F32, capacity, kvd);
            }
        }
    }

    public int Capacity { get; }

    /// <summary>Position of the pass's first row.</summary>
    public int Start { get; set; }

    /// <summary>Bytes held by every layer's keys and values.</summary>
    public long Bytes
    {
        get
        {
            long sum = 0;
            for (int l = 0; l < _c.NumLayers; l++) sum += _sliding[l]?.Bytes ?? _k[l]!.ByteLength + _v[l]!.ByteLength;
            return sum;
        }
    }

    /// <summary>Bytes a cache of <paramref name="capacity"/> positions takes for config <paramref name="c"/>.</summary>
    public static long BytesFor(ModelConfig c, int capacity)
    {
        long rowBytes = 2L * c.NumKvHeads * c.HeadDim * sizeof(float), sum = 0;
        for (int l = 0; l < c.NumLayers; l++)
        {
            int window = c.AttentionWindow(l);
            sum += rowBytes * (window > 0 ? Math.Min(capacity, SlidingKvBuffer.RowsFor(window)) : capacity);
        }
        return sum;
    }

    int Kvd => _c.NumKvHeads * _c.HeadDim;

    // Sliding layers get the pass's keys/values in the activations and copy them in when attending.
    public Span<float> Keys(int layer, BlockActivations a, int n) =>
        _sliding[layer] is null ? _k[layer]!.Floats.Slice(Start * Kvd, n * Kvd) : a.K.Floats[..(n * Kvd)];
    public Span<float> Values(int layer, BlockActivations a, int n) =>
        _sliding[layer] is null ? _v[layer]!.Floats.Slice(Start * Kvd, n * Kvd) : a.V.Floats[..(n * Kvd)];

    public void Attend(PassContext pass, int layer, BlockActivations a, int n)
    {
        int qd = _c.NumHeads * _c.HeadDim;
        var output = a.Attn.Floats[..(n * qd)];
        var q = a.Q.Floats[..(n * qd)];
        if (_sliding[layer] is { } sliding)
            sliding.AppendAndAttend(pass, a.K.Floats[..(n * Kvd)], a.V.Floats[..(n * Kvd)], q, output, Start, n, _c.NumHeads, _c.NumKvHeads, _c.HeadDim);
        else
            pass.Kernels.AttentionForwardCached(output, q, _k[layer]!.Floats, _v[layer]!.Floats, Start, n,
                _c.NumHeads, _c.NumKvHeads, _c.HeadDim, _c.AttentionWindow(layer));
    }

    /// <summary>For a batched step: stores layer <paramref name="layer"/>'s keys/values (count, Hkv·D) of positions
    /// start … start+count−1 and writes their queries' attention into output (count, Hq·D).</summary>
    public void AppendAndAttend(PassContext pass, int layer, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        ReadOnlySpan<float> q, Span<float> output, int start, int count)
    {
        if (_sliding[layer] is { } sliding)
        {
            sliding.AppendAndAttend(pass, keys, values, q, output, start, count, _c.NumHeads, _c.NumKvHeads, _c.HeadDim);
            return;
        }
        keys[..(count * Kvd)].CopyTo(_k[layer]!.Floats.Slice(start * Kvd));
        values[..(count * Kvd)].CopyTo(_v[layer]!.Floats.Slice(start * Kvd));
        pass.Kernels.AttentionForwardCached(output, q, _k[layer]!.Floats, _v[layer]!.Floats, start, count,
            _c.NumHeads, _c.NumKvHeads, _c.HeadDim, _c.AttentionWindow(layer));
    }

    public void Dispose()
    {
        foreach (var t in _k) t?.Dispose();
        foreach (var t in _v) t?.Dispose();
        foreach (var s in _sliding) s?.Dispose();
    }
}
