using PeftSharp.Compute;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace PeftSharp.Inference;

/// <summary>
/// Incremental decoding of one sequence with a KV cache: feed the prompt (prefill), then one token at a time.
/// Keys and values of every past position are kept per layer (after RoPE), so each new token costs one row of work.
/// The session owns all its state (cache, activations, adapter scratch): sessions on one model run concurrently.
/// Buffers grow to the largest chunk fed and are reused.
/// </summary>
internal sealed unsafe class InferenceSession : IDisposable
{
    readonly CausalLM _m;
    readonly KvCacheAttention _cache;
    readonly PassContext _pass;
    readonly List<int>? _history;   // LongRoPE: every token fed, to recompute the cache with the long factors
    bool _cacheLong;                // LongRoPE: the cached keys were rotated with the long factors
    BlockActivations? _acts;
    Tensor? _x, _y, _rstd;
    int _rows;

    public int MaxLength { get; }
    /// <summary>Tokens consumed so far (= the position of the next token).</summary>
    public int Length { get; private set; }

    public InferenceSession(CausalLM model, ComputeContext compute, int maxLength, AdapterRouting? routing = null)
    {
        if (maxLength > model.Rope.MaxPositions)
            throw new PeftException($"requested length {maxLength} exceeds the model's max_position_embeddings {model.Rope.MaxPositions}");
        if (routing is { IsWhole: false }) throw new ArgumentException("a single-sequence session uses one adapter for every row");
        _m = model;
        MaxLength = maxLength;
        _cache = new KvCacheAttention(model.Config, maxLength);
        _pass = new PassContext(compute, routing ?? AdapterRouting.None);
        if (model.Rope.FactorSwitchLength is not null) _history = [];
    }

    public long CacheBytes => _cache.Bytes;

    /// <summary>Forgets the sequence (the cache is overwritten from position 0).</summary>
    public void Reset()
    {
        Length = 0;
        _history?.Clear();
    }

    /// <summary>The length the whole sequence will reach when it is known up front (scoring a text in chunks): RoPE's
    /// factor set is then chosen for that length from the first chunk on, as one forward over the text would.</summary>
    public int? WholeLength { get; set; }

    /// <summary>Times the cache was dropped and the whole sequence recomputed (LongRoPE crossing its original length).</summary>
    public int Recomputes { get; private set; }

    /// <summary>
    /// Feeds <paramref name="ids"/> at positions Length…Length+n−1. Writes the logits of every fed token into
    /// <paramref name="allLogits"/> (n·V) if it is non-empty, and those of the last token into <paramref name="lastLogits"/> (V).
    /// LongRoPE follows transformers' Phi3ForCausalLM: a pass uses the long factors when the sequence then exceeds the
    /// original context length (or <see cref="WholeLength"/> does), and the first such pass after a cache built with
    /// the short factors drops the cache and recomputes every position (prepare_inputs_for_generation drops the cache
    /// when the length first passes original_max_position_embeddings), so cached keys never mix the two factor sets.
    /// </summary>
    public void Feed(ReadOnlySpan<int> ids, Span<float> lastLogits, Span<float> allLogits = default)
    {
        var c = _m.Config;
        int n = ids.Length, C = c.HiddenSize;
        if (n == 0) throw new ArgumentException("no tokens to feed");
        if (Length + n > MaxLength) throw new PeftException($"sequence would grow to {Length + n} tokens, beyond the session's {MaxLength}");
        foreach (var id in ids) if ((uint)id >= (uint)c.VocabSize) throw new PeftException($"token id {id} is outside the vocabulary (size {c.VocabSize})");
        int newTokens = n, start = Length;
        var rope = _m.Rope.ForLength(Math.Max(start + n, WholeLength ?? 0));
        if (_history is not null)
        {
            _history.AddRange(ids);
            if (start > 0 && rope.UsesLongFactors && !_cacheLong)
            {
                ids = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_history);
                n = ids.Length;
                start = 0;
                Recomputes++;
            }
        }
        if (!allLogits.IsEmpty && allLogits.Length < newTokens * c.VocabSize) throw new ArgumentException("allLogits too small");
        EnsureRows(n);
        var k = _pass.Kernels;
        var segment = _pass.Routing.First;

        Span<int> positions = n <= 1024 ? stackalloc int[n] : new int[n];
        for (int i = 0; i < n; i++) positions[i] = start + i;
        k.EmbeddingForward(_x!.Floats[..(n * C)], ids, _m.EmbedFor(segment).AsMatrix());

        _cache.Start = start;
        var cache = _cache;
        Tensor x = _x, y = _y!;
        for (int l = 0; l < c.NumLayers; l++)
        {
            DecoderBlock.Forward(_pass, _m.Layers[l], c, rope, _acts!, x, y, positions, n, ref cache);
            (x, y) = (y, x);
        }
        Length = start + n;
        _cacheLong = rope.UsesLongFactors;

        var final = y.Floats[..(n * C)];   // the block output's buffer is free again
        k.RmsNormForward(final, _rstd!.Floats[..n], x.Floats[..(n * C)], _m.FinalNorm.Values, n, C, c.RmsNormEps);
        var head = _m.LmHeadFor(segment);
        if (!allLogits.IsEmpty)   // the fed tokens are the last newTokens rows (all of them unless recomputed)
            fixed (float* lp = allLogits) LmHead.Logits(k, head, (float*)y.Data + (long)(n - newTokens) * C, newTokens, C, lp);
        if (!lastLogits.IsEmpty)
            fixed (float* lp = lastLogits) LmHead.Logits(k, head, (float*)y.Data + (long)(n - 1) * C, 1, C, lp);
    }

    void EnsureRows(int n)
    {
        if (_acts != null && _rows >= n) return;
        _acts?.Dispose(); _x?.Dispose(); _y?.Dispose(); _rstd?.Dispose();
        _rows = Math.Max(n, 1);
        _acts = new BlockActivations(_m.Config, _rows);
        _x = new Tensor(DType.F32, _rows, _m.Config.HiddenSize);
        _y = new Tensor(DType.F32, _rows, _m.Config.HiddenSize);
        _rstd = new Tensor(DType.F32, _rows);
    }

    public void Dispose()
    {
        _cache.Dispose();
        _acts?.Dispose(); _x?.Dispose(); _y?.Dispose(); _rstd?.Dispose();
        _pass.Dispose();
    }
}

/// <summary>Logits from final-normed hidden states: (rows, V) = hidden (rows, C) · head (V, C)ᵀ.</summary>
internal static unsafe class LmHead
{
    public static void Logits(IComputeBackend k, Tensor head, float* hidden, int rows, int c, float* logits)
    {
        int v = head.Shape[0];
        k.Gemm(false, true, rows, v, c, 1f, MatrixView.F32(hidden, rows, c), head.AsMatrix(), 0f, logits, v);
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
