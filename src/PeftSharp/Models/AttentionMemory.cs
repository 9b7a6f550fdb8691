using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>
/// Where a decoder block's attention finds its keys and values: the block writes this pass's new keys/values where
/// the memory says, then asks it to attend. Training and scoring over packed batches keep them in the block's saved
/// activations (<see cref="BatchAttention"/>); generation keeps every past position in a cache (<see cref="KvCacheAttention"/>).
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
            c.NumHeads, c.NumKvHeads, c.HeadDim, c.AttentionWindow(layer), c.AttentionSoftcap);
}

/// <summary>
/// One sequence's keys and values at every past position, per layer (after RoPE): the pass's rows are the
/// positions Start … Start+n−1 and attend to everything before them (a sliding-window layer only to its window:
/// the cache keeps every position and the kernel skips the older ones; it is not a ring buffer).
/// </summary>
internal sealed class KvCacheAttention : IAttentionMemory, IDisposable
{
    readonly ModelConfig _c;
    readonly Tensor[] _k, _v;     // per layer (capacity, Hkv·D)

    public KvCacheAttention(ModelConfig c, int capacity)
    {
        _c = c;
        Capacity = capacity;
        int kvd = c.NumKvHeads * c.HeadDim;
        _k = new Tensor[c.NumLayers];
        _v = new Tensor[c.NumLayers];
        for (int l = 0; l < c.NumLayers; l++)
        {
            _k[l] = new Tensor(DType.F32, capacity, kvd);
            _v[l] = new Tensor(DType.F32, capacity, kvd);
        }
    }

    public int Capacity { get; }

    /// <summary>Position of the pass's first row.</summary>
    public int Start { get; set; }

    public long Bytes => _k.Sum(t => t.ByteLength) * 2;

    /// <summary>Layer <paramref name="layer"/>'s whole key cache (capacity, Hkv·D); a batched memory writes into it.</summary>
    public Span<float> LayerKeys(int layer) => _k[layer].Floats;

    /// <summary>Layer <paramref name="layer"/>'s whole value cache (capacity, Hkv·D).</summary>
    public Span<float> LayerValues(int layer) => _v[layer].Floats;

    int Kvd => _c.NumKvHeads * _c.HeadDim;
    public Span<float> Keys(int layer, BlockActivations a, int n) => _k[layer].Floats.Slice(Start * Kvd, n * Kvd);
    public Span<float> Values(int layer, BlockActivations a, int n) => _v[layer].Floats.Slice(Start * Kvd, n * Kvd);

    public void Attend(PassContext pass, int layer, BlockActivations a, int n) =>
        pass.Kernels.AttentionForwardCached(a.Attn.Floats[..(n * _c.NumHeads * _c.HeadDim)], a.Q.Floats[..(n * _c.NumHeads * _c.HeadDim)],
            _k[layer].Floats, _v[layer].Floats, Start, n, _c.NumHeads, _c.NumKvHeads, _c.HeadDim, _c.AttentionWindow(layer), _c.AttentionSoftcap);

    public void Dispose()
    {
        foreach (var t in _k) t.Dispose();
        foreach (var t in _v) t.Dispose();
    }
}
