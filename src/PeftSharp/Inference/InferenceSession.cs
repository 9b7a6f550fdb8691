using PeftSharp.Kernels;
using PeftSharp.Models;
using PeftSharp.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace PeftSharp.Inference;

/// <summary>
/// Incremental decoding of one sequence with a KV cache: feed the prompt (prefill), then one token at a time.
/// Keys and values of every past position are kept per layer (after RoPE), so each new token costs one row of work.
/// Scratch buffers grow to the largest chunk fed and are reused.
/// </summary>
public sealed unsafe class InferenceSession : IDisposable
{
    readonly CausalLM _m;
    readonly Tensor[] _kCache, _vCache;     // per layer (MaxLength, Hkv·D)
    Scratch? _s;

    public int MaxLength { get; }
    /// <summary>Tokens consumed so far (= the position of the next token).</summary>
    public int Length { get; private set; }

    public InferenceSession(CausalLM model, int maxLength)
    {
        var c = model.Config;
        if (maxLength > model.Rope.MaxPositions)
            throw new PeftException($"requested length {maxLength} exceeds the model's max_position_embeddings {model.Rope.MaxPositions}");
        _m = model;
        MaxLength = maxLength;
        int kvd = c.NumKvHeads * c.HeadDim;
        _kCache = new Tensor[c.NumLayers];
        _vCache = new Tensor[c.NumLayers];
        for (int l = 0; l < c.NumLayers; l++)
        {
            _kCache[l] = new Tensor(DType.F32, maxLength, kvd);
            _vCache[l] = new Tensor(DType.F32, maxLength, kvd);
        }
    }

    public long CacheBytes => _kCache.Sum(t => t.ByteLength) * 2;

    /// <summary>Forgets the sequence (the cache is overwritten from position 0).</summary>
    public void Reset() => Length = 0;

    /// <summary>
    /// Feeds <paramref name="ids"/> at positions Length…Length+n−1. Writes the logits of every fed token into
    /// <paramref name="allLogits"/> (n·V) if it is non-empty, and those of the last token into <paramref name="lastLogits"/> (V).
    /// </summary>
    public void Feed(ReadOnlySpan<int> ids, Span<float> lastLogits, Span<float> allLogits = default)
    {
        var c = _m.Config;
        int n = ids.Length, start = Length;
        if (n == 0) throw new ArgumentException("no tokens to feed");
        if (start + n > MaxLength) throw new PeftException($"sequence would grow to {start + n} tokens, beyond the session's {MaxLength}");
        foreach (var id in ids) if ((uint)id >= (uint)c.VocabSize) throw new PeftException($"token id {id} is outside the vocabulary (size {c.VocabSize})");
        if (_s == null || _s.Rows < n) { _s?.Dispose(); _s = new Scratch(c, Math.Max(n, 1)); }
        var s = _s;
        int C = c.HiddenSize, D = c.HeadDim, hq = c.NumHeads, hkv = c.NumKvHeads, kvd = hkv * D, qd = hq * D, F = c.IntermediateSize;

        Span<int> positions = n <= 1024 ? stackalloc int[n] : new int[n];
        for (int i = 0; i < n; i++) positions[i] = start + i;
        var r = s.Residual.Floats[..(n * C)];
        Embedding.Forward(r, ids, _m.Embed.AsMatrix());

        for (int l = 0; l < c.NumLayers; l++)
        {
            var layer = _m.Layers[l];
            var xn = s.Xn.Floats[..(n * C)];
            RmsNorm.Forward(xn, s.Rstd.Floats[..n], r, layer.InputNorm.Values, n, C, c.RmsNormEps);
            var q = s.Q.Floats[..(n * qd)];
            var kNew = _kCache[l].Floats.Slice(start * kvd, n * kvd);
            var vNew = _vCache[l].Floats.Slice(start * kvd, n * kvd);
            float* xnp = (float*)s.Xn.Data;
            if (layer.QNorm != null && layer.KNorm != null)
            {
                layer.Q.Forward(xnp, (float*)s.Tmp.Data, n, false);
                RmsNorm.Forward(q, s.RstdHeads.Floats[..(n * hq)], s.Tmp.Floats[..(n * qd)], layer.QNorm.Values, n * hq, D, c.RmsNormEps);
                layer.K.Forward(xnp, (float*)s.Tmp.Data, n, false);
                RmsNorm.Forward(kNew, s.RstdHeads.Floats[..(n * hkv)], s.Tmp.Floats[..(n * kvd)], layer.KNorm.Values, n * hkv, D, c.RmsNormEps);
            }
            else
            {
                layer.Q.Forward(xnp, (float*)s.Q.Data, n, false);
                fixed (float* kp = kNew) layer.K.Forward(xnp, kp, n, false);
            }
            fixed (float* vp = vNew) layer.V.Forward(xnp, vp, n, false);
            Rope.Forward(q, positions, hq, _m.Rope);
            Rope.Forward(kNew, positions, hkv, _m.Rope);

            var attn = s.Attn.Floats[..(n * qd)];
            Attention.ForwardCached(attn, q, _kCache[l].Floats, _vCache[l].Floats, start, n, hq, hkv, D);
            layer.O.Forward((float*)s.Attn.Data, (float*)s.Xn.Data, n, false);
            TensorPrimitives.Add(r, xn, r);

            RmsNorm.Forward(xn, s.Rstd.Floats[..n], r, layer.PostNorm.Values, n, C, c.RmsNormEps);
            layer.Gate.Forward(xnp, (float*)s.Gate.Data, n, false);
            layer.Up.Forward(xnp, (float*)s.Up.Data, n, false);
            SwiGlu.Forward(s.H.Floats[..(n * F)], s.Gate.Floats[..(n * F)], s.Up.Floats[..(n * F)]);
            layer.Down.Forward((float*)s.H.Data, (float*)s.Xn.Data, n, false);
            TensorPrimitives.Add(r, xn, r);
        }
        Length = start + n;

        var final = s.Xn.Floats[..(n * C)];
        RmsNorm.Forward(final, s.Rstd.Floats[..n], r, _m.FinalNorm.Values, n, C, c.RmsNormEps);
        if (!allLogits.IsEmpty)
        {
            if (allLogits.Length < n * c.VocabSize) throw new ArgumentException("allLogits too small");
            fixed (float* lp = allLogits) LmHead.Logits(_m, (float*)s.Xn.Data, n, lp);
        }
        if (!lastLogits.IsEmpty)
            fixed (float* lp = lastLogits) LmHead.Logits(_m, (float*)s.Xn.Data + (long)(n - 1) * C, 1, lp);
    }

    public void Dispose()
    {
        foreach (var t in _kCache) t.Dispose();
        foreach (var t in _vCache) t.Dispose();
        _s?.Dispose();
    }

    sealed class Scratch : IDisposable
    {
        public readonly int Rows;
        public readonly Tensor Residual, Xn, Rstd, RstdHeads, Q, Tmp, Attn, Gate, Up, H;
        public Scratch(ModelConfig c, int rows)
        {
            Rows = rows;
            int qd = c.NumHeads * c.HeadDim;
            Residual = new Tensor(DType.F32, rows, c.HiddenSize);
            Xn = new Tensor(DType.F32, rows, c.HiddenSize);
            Rstd = new Tensor(DType.F32, rows);
            RstdHeads = new Tensor(DType.F32, rows * c.NumHeads);
            Q = new Tensor(DType.F32, rows, qd);
            Tmp = new Tensor(DType.F32, rows, qd);
            Attn = new Tensor(DType.F32, rows, qd);
            Gate = new Tensor(DType.F32, rows, c.IntermediateSize);
            Up = new Tensor(DType.F32, rows, c.IntermediateSize);
            H = new Tensor(DType.F32, rows, c.IntermediateSize);
        }
        public void Dispose() { foreach (var t in new[] { Residual, Xn, Rstd, RstdHeads, Q, Tmp, Attn, Gate, Up, H }) t.Dispose(); }
    }
}

/// <summary>Logits from final-normed hidden states: (rows, V) = hidden (rows, C) · LmHead (V, C)ᵀ.</summary>
public static unsafe class LmHead
{
    public static void Logits(CausalLM m, float* hidden, int rows, float* logits)
    {
        int C = m.Config.HiddenSize, V = m.Config.VocabSize;
        Gemm.Multiply(false, true, rows, V, C, 1f, MatrixView.F32(hidden, rows, C), m.LmHead.AsMatrix(), 0f, logits, V);
    }

    /// <summary>log-softmax of one row of logits at index <paramref name="target"/>.</summary>
    public static double LogProb(ReadOnlySpan<float> logits, int target)
    {
        float max = TensorPrimitives.Max(logits);
        double sum = 0;
        foreach (var x in logits) sum += Math.Exp(x - max);
        return logits[target] - max - Math.Log(sum);
    }
}
