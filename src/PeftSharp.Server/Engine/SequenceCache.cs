using PeftSharp.Models;
using PeftSharp.Tensors;

namespace PeftSharp.Server.Engine;

/// <summary>One sequence's keys and values at every past position, per layer (after RoPE), sized for the
/// sequence's own limit (prompt + max new tokens), so a short request holds little memory.</summary>
internal sealed class SequenceCache : IDisposable
{
    readonly Tensor[] _k, _v;   // per layer (capacity, Hkv·D)

    public SequenceCache(ModelConfig c, int capacity)
    {
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

    public Span<float> Keys(int layer) => _k[layer].Floats;
    public Span<float> Values(int layer) => _v[layer].Floats;

    public void Dispose()
    {
        foreach (var t in _k) t.Dispose();
        foreach (var t in _v) t.Dispose();
    }
}
