using PeftSharp.Compute;
using PeftSharp.Inference;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Server.Engine;

/// <summary>
/// One forward of a continuous-batching step over the model: the rows of every sequence in flight (a whole prompt for
/// a sequence that joins, one token for one that decodes), grouped by adapter into routing segments, so the base
/// projections run once over all rows and each adapter over its own. Produces the logits of each sequence's last row.
/// Owns its pass and buffers (grown to the largest step); used by the scheduler thread only.
/// </summary>
internal sealed unsafe class BatchForward : IDisposable
{
    readonly CausalLM _m;
    readonly PassContext _pass;
    BlockActivations? _acts;
    Tensor? _x, _y, _rstd, _last;
    int _rows;

    public BatchForward(CausalLM model, ComputeContext compute)
    {
        _m = model;
        _pass = new PassContext(compute, AdapterRouting.None);
    }

    /// <summary>
    /// Runs the rows: ids/positions (n), the sequences' row groups, and the routing segments (consecutive, covering
    /// all rows; a segment never splits a sequence). Writes the last row's logits of sequence i into logits[i] (V).
    /// </summary>
    public void Run(ReadOnlySpan<int> ids, ReadOnlySpan<int> positions, IReadOnlyList<SequenceRows> sequences,
        IReadOnlyList<RowSegment> segments, IReadOnlyList<float[]> logits)
    {
        var c = _m.Config;
        int n = ids.Length, C = c.HiddenSize;
        Ensure(n);
        var k = _pass.Kernels;
        _pass.Routing = AdapterRouting.Segmented(segments);
        foreach (var s in segments)
            k.EmbeddingForward(_x!.Floats.Slice(s.Start * C, s.Count * C), ids.Slice(s.Start, s.Count), _m.EmbedFor(s).AsMatrix());

        var memory = new BatchedKvAttention(c, sequences);
        var rope = _m.RopeFor(positions);   // ServeEngine never mixes LongRoPE's short and long sequences in a step
        Tensor x = _x!, y = _y!;
        for (int l = 0; l < c.NumLayers; l++)
        {
            DecoderBlock.Forward(_pass, _m.Layers[l], c, rope, _acts!, x, y, positions, n, ref memory);
            (x, y) = (y, x);
        }

        // Final norm of each sequence's last row only, then one LM-head product per run of consecutive segments that
        // share a head (all of them unless an adapter replaces it): per-adapter products would read the V × C head
        // once per adapter. A row's logits do not depend on the other rows of the product.
        var last = _last!.Floats;
        for (int i = 0; i < sequences.Count; i++)
        {
            var s = sequences[i];
            int row = s.Row + s.Count - 1;
            k.RmsNormForward(last.Slice(i * C, C), _rstd!.Floats.Slice(i, 1), x.Floats.Slice(row * C, C), _m.FinalNorm.Values, 1, C, c.RmsNormEps);
        }
        int v = c.VocabSize, si = 0, seg = 0;
        using var buf = _pass.Buffers.Rent((long)sequences.Count * v);
        while (seg < segments.Count)
        {
            var head = _m.LmHeadFor(segments[seg]);
            int end = seg + 1;
            while (end < segments.Count && ReferenceEquals(_m.LmHeadFor(segments[end]), head)) end++;
            int rowsEnd = end < segments.Count ? segments[end].Start : n, first = si;
            while (si < sequences.Count && sequences[si].Row < rowsEnd) si++;
            if (si > first) LmHead.Logits(k, head, (float*)_last.Data + (long)first * C, si - first, C, buf.Pointer + (long)first * v);
            seg = end;
        }
        for (int j = 0; j < sequences.Count; j++) new ReadOnlySpan<float>(buf.Pointer + (long)j * v, v).CopyTo(logits[j]);
    }

    void Ensure(int n)
    {
        if (_acts != null && _rows >= n) return;
        Free();
        _rows = Math.Max(n, Math.Max(1, _rows * 2));
        _acts = new BlockActivations(_m.Config, _rows);
        _x = new Tensor(DType.F32, _rows, _m.Config.HiddenSize);
        _y = new Tensor(DType.F32, _rows, _m.Config.HiddenSize);
        _rstd = new Tensor(DType.F32, _rows);
        _last = new Tensor(DType.F32, _rows, _m.Config.HiddenSize);
    }

    void Free()
    {
        _acts?.Dispose(); _x?.Dispose(); _y?.Dispose(); _rstd?.Dispose(); _last?.Dispose();
    }

    public void Dispose()
    {
        Free();
        _pass.Dispose();
    }
}
