using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>
/// One pre-norm decoder block's weights: RMSNorm → attention (q,k,v,o; optional per-head q/k norm) → residual →
/// RMSNorm → SwiGLU MLP (gate, up, down) → residual. Projections are <see cref="ILinear"/> so adapters can wrap them.
/// </summary>
internal sealed class DecoderLayer : IDisposable
{
    public int Index { get; }
    public Norm InputNorm { get; }
    public Norm PostNorm { get; }
    public Norm? QNorm { get; }
    public Norm? KNorm { get; }
    public ILinear Q { get; set; }
    public ILinear K { get; set; }
    public ILinear V { get; set; }
    public ILinear O { get; set; }
    public ILinear Gate { get; set; }
    public ILinear Up { get; set; }
    public ILinear Down { get; set; }

    public DecoderLayer(int index, Norm inputNorm, Norm postNorm, Norm? qNorm, Norm? kNorm,
        ILinear q, ILinear k, ILinear v, ILinear o, ILinear gate, ILinear up, ILinear down)
    {
        Index = index;
        InputNorm = inputNorm; PostNorm = postNorm; QNorm = qNorm; KNorm = kNorm;
        Q = q; K = k; V = v; O = o; Gate = gate; Up = up; Down = down;
    }

    /// <summary>The seven projections with their HF module names.</summary>
    public IEnumerable<ILinear> Projections => [Q, K, V, O, Gate, Up, Down];

    /// <summary>Replaces the projection whose module name is <paramref name="name"/> (used by adapter injection).</summary>
    public bool Replace(string name, Func<ILinear, ILinear> wrap)
    {
        if (Q.Name == name) { Q = wrap(Q); return true; }
        if (K.Name == name) { K = wrap(K); return true; }
        if (V.Name == name) { V = wrap(V); return true; }
        if (O.Name == name) { O = wrap(O); return true; }
        if (Gate.Name == name) { Gate = wrap(Gate); return true; }
        if (Up.Name == name) { Up = wrap(Up); return true; }
        if (Down.Name == name) { Down = wrap(Down); return true; }
        return false;
    }

    public IEnumerable<Norm> Norms()
    {
        yield return InputNorm;
        if (QNorm != null) yield return QNorm;
        if (KNorm != null) yield return KNorm;
        yield return PostNorm;
    }

    public void Dispose()
    {
        foreach (var n in Norms()) n.Dispose();
        foreach (var p in Projections) (p as IDisposable)?.Dispose();
    }
}
