using PeftSharp.Models;
using PeftSharp.Nn;

namespace PeftSharp.Server.Engine;

/// <summary>Rows [Row, Row+Count) of a step belong to one sequence whose cache already holds Start positions.</summary>
internal readonly record struct SequenceRows(KvCacheAttention Cache, int Row, int Count, int Start);

/// <summary>
/// Attention memory of a continuous-batching step: the step's rows are grouped by sequence, each sequence with its own
/// KV cache. The block writes every row's new keys/values into the step's activations; <see cref="Attend"/> copies
/// each sequence's rows into its cache (a sliding-window layer's keeps only its window) and attends its queries to that cache alone (the same cached-attention kernel
/// a single-sequence session uses, so a sequence's result does not depend on what else is in the batch).
/// </summary>
internal sealed class BatchedKvAttention(ModelConfig c, IReadOnlyList<SequenceRows> sequences) : IAttentionMemory
{
    readonly int _kvd = c.NumKvHeads * c.HeadDim, _qd = c.NumHeads * c.HeadDim;

    public Span<float> Keys(int layer, BlockActivations a, int n) => a.K.Floats[..(n * _kvd)];
    public Span<float> Values(int layer, BlockActivations a, int n) => a.V.Floats[..(n * _kvd)];

    public void Attend(PassContext pass, int layer, BlockActivations a, int n)
    {
        foreach (var s in sequences)
            s.Cache.AppendAndAttend(pass, layer, a.K.Floats.Slice(s.Row * _kvd, s.Count * _kvd), a.V.Floats.Slice(s.Row * _kvd, s.Count * _kvd),
                a.Q.Floats.Slice(s.Row * _qd, s.Count * _qd), a.Attn.Floats.Slice(s.Row * _qd, s.Count * _qd), s.Start, s.Count);
    }
}
