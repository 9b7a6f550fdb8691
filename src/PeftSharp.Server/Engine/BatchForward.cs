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

        // Final norm of each sequence's last row only, then one LM-head product per segment over its sequences' rows.
        int si = 0;
        var last = _last!.Floats;
        foreach (var seg in segments)
        {
            int first = si, count = 0;
            while (si < sequences.Count && sequences[si].Row < seg.Start + seg.Count)
            {
                var s = sequences[si];
                int row = s.Row + s.Count - 1;
                k.RmsNormForward(last.Slice(count * C, C), _rstd!.Floats.Slice(count, 1), x.Floats.Slice(row * C, C), _m.FinalNorm.Values, 1, C, c.RmsNormEps);
                count++; si++;
            }
            if (count == 0) continue;
            var head = _m.LmHeadFor(seg);
            int v = c.VocabSize;
            using var buf = _pass.Buffers.Rent((long)count * v);
            LmHead.Logits(k, head, (float*)_last.Data, count, C, buf.Pointer);
            for (int j = 0; j < count; j++) new ReadOnlySpan<float>(buf.Pointer + (long)j * v, v).CopyTo(logits[first + j]);
        }
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
