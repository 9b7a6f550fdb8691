using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>
/// A sliding-window layer's keys and values for one sequence: only the last window − 1 positions plus a slack of
/// new rows are kept (<see cref="RowsFor"/>). Buffer row 0 holds position <c>_base</c>; when the buffer is full the
/// last window − 1 positions move to the front, so the keys every query needs stay contiguous and the ordinary cached
/// attention kernel runs on them with shifted positions (the window mask depends only on position differences).
/// New rows arrive in order; a chunk longer than the free slack is attended in pieces.
/// </summary>
internal sealed class SlidingKvBuffer : IDisposable
{
    readonly Tensor _k, _v;       // (rows, Hkv·D)
    readonly int _window, _rows, _kvd;
    int _base, _held;             // positions [_base, _held) are in buffer rows [0, _held − _base)

    /// <summary>Most new positions a compaction makes room for: small enough that the buffer stays near the window,
    /// large enough that the (window − 1)-row move is rare (every <c>slack</c> decoded tokens).</summary>
    public static int Slack(int window) => Math.Min(window, 256);

    /// <summary>Buffer rows for a window: window − 1 kept positions plus the slack.</summary>
    public static int RowsFor(int window) => window - 1 + Slack(window);

    public SlidingKvBuffer(int window, int kvDim)
    {
        if (window <= 0) throw new ArgumentOutOfRangeException(nameof(window), window, "a sliding buffer needs a positive window");
        _window = window;
        _rows = RowsFor(window);
        _kvd = kvDim;
        _k = new Tensor(DType.F32, _rows, kvDim);
        _v = new Tensor(DType.F32, _rows, kvDim);
    }

    public long Bytes => _k.ByteLength + _v.ByteLength;

    /// <summary>Positions held now (at most <see cref="RowsFor"/>).</summary>
    public int HeldPositions => _held - _base;

    /// <summary>
    /// Appends positions start … start+count−1 (keys/values (count, Hkv·D), after RoPE) and writes the attention of
    /// their queries q (count, Hq·D) into output. start below the positions held rewinds (0: a new sequence; otherwise
    /// only as far as the kept window allows).
    /// </summary>
    public void AppendAndAttend(PassContext pass, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, ReadOnlySpan<float> q,
        Span<float> output, int start, int count, int qHeads, int kvHeads, int headDim)
    {
        Rewind(start);
        int qd = qHeads * headDim;
        for (int done = 0; done < count;)
        {
            if (_held - _base == _rows) Compact();
            int p0 = start + done, row = _held - _base, m = Math.Min(count - done, _rows - row);
            keys.Slice(done * _kvd, m * _kvd).CopyTo(_k.Floats.Slice(row * _kvd));
            values.Slice(done * _kvd, m * _kvd).CopyTo(_v.Floats.Slice(row * _kvd));
            _held += m;
            // Every key these queries see (from p0 − window + 1) is at or after _base: Compact keeps window − 1 positions.
            pass.Kernels.AttentionForwardCached(output.Slice(done * qd, m * qd), q.Slice(done * qd, m * qd),
                _k.Floats[..((_held - _base) * _kvd)], _v.Floats[..((_held - _base) * _kvd)], p0 - _base, m,
                qHeads, kvHeads, headDim, _window);
            done += m;
        }
    }

    void Rewind(int start)
    {
        if (start == _held) return;
        if (start == 0) { _base = _held = 0; return; }
        if (start > _held)
            throw new InvalidOperationException($"sliding-window cache holds positions up to {_held - 1}; position {start} would leave a gap");
        if (start - (_window - 1) < _base && _base > 0)
            throw new InvalidOperationException($"sliding-window cache no longer holds the window of position {start} (kept from {_base})");
        _held = start;
    }

    /// <summary>Moves the last window − 1 positions to the front.</summary>
    void Compact()
    {
        int keep = _window - 1, from = _held - keep - _base;
        _k.Floats.Slice(from * _kvd, keep * _kvd).CopyTo(_k.Floats);
        _v.Floats.Slice(from * _kvd, keep * _kvd).CopyTo(_v.Floats);
        _base = _held - keep;
    }

    public void Dispose()
    {
        _k.Dispose();
        _v.Dispose();
    }
}
