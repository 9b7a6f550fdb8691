using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>
/// One pre-norm decoder block's weights: RMSNorm → attention (q,k,v,o; optional per-head q/k norm) → residual →
/// RMSNorm → SwiGLU MLP (gate, up, down) → residual. Projections are <see cref="ILinear"/> so adapters can wrap them;
/// phi3 stores q/k/v and gate/up as fused modules, which the block splits (so an adapter on a fused module is PEFT's).
/// </summary>
internal sealed class DecoderLayer : IDisposable
{
    public int Index { get; }
    public Norm InputNorm { get; }
    public Norm PostNorm { get; }
    public Norm? QNorm { get; }
    public Norm? KNorm { get; }
    /// <summary>Gemma's sandwich norms: with them, <see cref="PostNorm"/> (post_attention_layernorm) norms the attention
    /// output before the residual add, PreFfnNorm is the MLP's input norm and PostFfnNorm norms the MLP output.</summary>
    public Norm? PreFfnNorm { get; init; }
    public Norm? PostFfnNorm { get; init; }
    public bool SandwichNorms => PreFfnNorm != null;
    // Separate projections (llama, mistral, qwen): Q, K, V, Gate, Up set, Qkv and GateUp null; fused (phi3): the reverse.
    public ILinear? Q { get; set; }
    public ILinear? K { get; set; }
    public ILinear? V { get; set; }
    public ILinear O { get; set; }
    public ILinear? Gate { get; set; }
    public ILinear? Up { get; set; }
    public ILinear Down { get; set; }
    /// <summary>Fused q|k|v projection, output rows [q (Hq·D); k (Hkv·D); v (Hkv·D)].</summary>
    public ILinear? Qkv { get; set; }
    /// <summary>Fused gate|up projection, output rows [gate (F); up (F)].</summary>
    public ILinear? GateUp { get; set; }

    public DecoderLayer(int index, Norm inputNorm, Norm postNorm, Norm? qNorm, Norm? kNorm,
        ILinear q, ILinear k, ILinear v, ILinear o, ILinear gate, ILinear up, ILinear down)
    {
        Index = index;
        InputNorm = inputNorm; PostNorm = postNorm; QNorm = qNorm; KNorm = kNorm;
        Q = q; K = k; V = v; O = o; Gate = gate; Up = up; Down = down;
    }

    /// <summary>A layer with fused qkv_proj and gate_up_proj (phi3).</summary>
    public DecoderLayer(int index, Norm inputNorm, Norm postNorm, ILinear qkv, ILinear o, ILinear gateUp, ILinear down)
    {
        Index = index;
        InputNorm = inputNorm; PostNorm = postNorm;
        Qkv = qkv; O = o; GateUp = gateUp; Down = down;
    }

    public bool Fused => Qkv != null;

    /// <summary>The projections with their HF module names, in HF order (seven, or four when fused).</summary>
    public IEnumerable<ILinear> Projections => Fused ? [Qkv!, O, GateUp!, Down] : [Q!, K!, V!, O, Gate!, Up!, Down];

    /// <summary>Replaces the projection whose module name is <paramref name="name"/> (used by adapter injection).</summary>
    public bool Replace(string name, Func<ILinear, ILinear> wrap)
    {
        if (Q?.Name == name) { Q = wrap(Q); return true; }
        if (K?.Name == name) { K = wrap(K); return true; }
        if (V?.Name == name) { V = wrap(V); return true; }
        if (Qkv?.Name == name) { Qkv = wrap(Qkv); return true; }
        if (O.Name == name) { O = wrap(O); return true; }
        if (Gate?.Name == name) { Gate = wrap(Gate); return true; }
        if (Up?.Name == name) { Up = wrap(Up); return true; }
        if (GateUp?.Name == name) { GateUp = wrap(GateUp); return true; }
        if (Down.Name == name) { Down = wrap(Down); return true; }
        return false;
    }

    public IEnumerable<Norm> Norms()
    {
        yield return InputNorm;
        if (QNorm != null) yield return QNorm;
        if (KNorm != null) yield return KNorm;
        yield return PostNorm;
        if (PreFfnNorm != null) yield return PreFfnNorm;
        if (PostFfnNorm != null) yield return PostFfnNorm;
    }

    public void Dispose()
    {
        foreach (var n in Norms()) n.Dispose();
        foreach (var p in Projections) (p as IDisposable)?.Dispose();
    }
}
