using PeftSharp.Compute;
using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>
/// Runs a <see cref="CausalLM"/> over batches of a fixed shape (batch × seq) for training and evaluation. The pass owns
/// everything it computes — block activations, adapter activations (in its <see cref="PassContext"/>), gradient
/// scratch — allocated once for the shape and reused every step; the model is only read. With <c>recompute</c> on
/// (gradient checkpointing), only each block's input is kept: block and adapter activations are released after each
/// block's forward and recomputed just before its backward.
/// </summary>
internal sealed unsafe class ModelPass : IDisposable
{
    readonly CausalLM _m;
    readonly Tensor[] _residual;                 // L+1 × (N,C): input of block l; [L] = last block's output
    readonly BlockActivations[] _acts;           // L instances, or 1 shared when recomputing
    BlockGradients? _grads;
    Tensor? _dA, _dB;                            // (N,C) gradient ping-pong buffers
    readonly Tensor _final, _rstdFinal;          // (N,C), (N)

    public int Batch { get; }
    public int Seq { get; }
    public int Tokens => Batch * Seq;
    public bool Recompute { get; }

    /// <summary>The pass's state: compute context, adapter routing, dropout keys, saved adapter activations.</summary>
    public PassContext Context { get; }

    public ModelPass(CausalLM model, ComputeContext compute, int batch, int seq, bool recompute, AdapterRouting? routing = null)
    {
        if (seq > model.Config.MaxPositions && model.Rope.MaxPositions < seq)
            throw new PeftException($"sequence length {seq} exceeds the model's max_position_embeddings {model.Config.MaxPositions}");
        _m = model; Batch = batch; Seq = seq; Recompute = recompute;
        Context = new PassContext(compute, routing ?? AdapterRouting.None);
        var c = model.Config;
        int n = batch * seq;
        _residual = new Tensor[c.NumLayers + 1];
        for (int i = 0; i <= c.NumLayers; i++) _residual[i] = new Tensor(DType.F32, n, c.HiddenSize);
        _acts = new BlockActivations[recompute ? 1 : c.NumLayers];
        for (int i = 0; i < _acts.Length; i++) _acts[i] = new BlockActivations(c, n, i == 0 ? null : _acts[0]);
        _final = new Tensor(DType.F32, n, c.HiddenSize);
        _rstdFinal = new Tensor(DType.F32, n);
    }

    /// <summary>Which adapter each row uses (set before a forward).</summary>
    public AdapterRouting Routing { get => Context.Routing; set => Context.Routing = value; }

    /// <summary>Bytes of activation memory this pass holds: saved block activations, gradient scratch, and the peak of
    /// what adapters saved (with recompute, one block's worth). The pass's transient scratch pool is
    /// <see cref="ScratchBytes"/>.</summary>
    public long ActivationBytes =>
        _residual.Sum(t => t.ByteLength) + _acts.Sum(a => a.Bytes) + (_grads?.Bytes ?? 0)
        + (_dA?.ByteLength ?? 0) * 2 + _final.ByteLength + _rstdFinal.ByteLength + Context.PeakSavedBytes;

    /// <summary>Bytes of the pass's buffer pool beyond what adapters saved (dropout inputs, rank-r gradients …).</summary>
    public long ScratchBytes => Math.Max(0, Context.Bytes - Context.SavedBytes);

    /// <summary>The final-normed hidden states (N,C) of the last forward.</summary>
    public Tensor FinalHidden => _final;

    BlockActivations Acts(int layer) => _acts[Recompute ? 0 : layer];

    void Check(ReadOnlySpan<int> ids, ReadOnlySpan<int> positions, ReadOnlySpan<int> segmentIds, ReadOnlySpan<int> targets)
    {
        int n = Tokens;
        if (ids.Length != n || positions.Length != n || targets.Length != n || (segmentIds.Length != 0 && segmentIds.Length != n))
            throw new ArgumentException($"batch arrays must have {n} = {Batch}×{Seq} entries");
        int v = _m.Config.VocabSize;
        foreach (var id in ids) if ((uint)id >= (uint)v) throw new PeftException($"token id {id} is outside the vocabulary (size {v})");
        foreach (var t in targets) if (t != -100 && (uint)t >= (uint)v) throw new PeftException($"target id {t} is outside the vocabulary (size {v})");
        int maxPos = _m.Rope.MaxPositions;
        foreach (var p in positions) if ((uint)p >= (uint)maxPos) throw new PeftException($"position {p} is outside [0, {maxPos})");
        Routing.Check(n);
    }

    /// <summary>Forward through the final norm; activations saved for backward when <paramref name="training"/>.</summary>
    public void Forward(ReadOnlySpan<int> ids, ReadOnlySpan<int> positions, ReadOnlySpan<int> segmentIds, bool training)
    {
        var c = _m.Config;
        var k = Context.Kernels;
        int n = Tokens, C = c.HiddenSize;
        Context.Training = training;
        foreach (var s in Routing.Segments)
        {
            int start = s.Start, count = s.CountIn(n);
            k.EmbeddingForward(_residual[0].Floats.Slice(start * C, count * C), ids.Slice(start, count), _m.EmbedFor(s).AsMatrix());
        }
        var memory = new BatchAttention(c, segmentIds, Batch, Seq);
        var rope = _m.RopeFor(positions);
        for (int l = 0; l < c.NumLayers; l++)
        {
            DecoderBlock.Forward(Context, _m.Layers[l], c, rope, Acts(l), _residual[l], _residual[l + 1], positions, n, ref memory);
            if (Recompute) Context.Release(_m.Layers[l].Projections);   // saved again before this block's backward
        }
        k.RmsNormForward(_final.Floats, _rstdFinal.Floats, _residual[c.NumLayers].Floats, _m.FinalNorm.Values, n, C, c.RmsNormEps);
    }

    /// <summary>Forward only: (sum of token losses, number of scored tokens).</summary>
    public (double LossSum, int Count) Loss(ReadOnlySpan<int> ids, ReadOnlySpan<int> positions, ReadOnlySpan<int> segmentIds, ReadOnlySpan<int> targets)
    {
        Check(ids, positions, segmentIds, targets);
        Forward(ids, positions, segmentIds, training: false);
        return HeadLoss(targets, 0f, Span<float>.Empty, wantWeightGrad: false);
    }

    // Σ over routing segments of the LM head + cross-entropy on their rows (each segment's head).
    (double LossSum, int Count) HeadLoss(ReadOnlySpan<int> targets, float gradScale, Span<float> dHidden, bool wantWeightGrad)
    {
        int n = Tokens, C = _m.Config.HiddenSize;
        double sum = 0;
        int count = 0;
        foreach (var s in Routing.Segments)
        {
            int start = s.Start, rows = s.CountIn(n);
            var (ls, lc) = Context.Kernels.CrossEntropy(_final.Floats.Slice(start * C, rows * C), _m.LmHeadFor(s).AsMatrix(),
                targets.Slice(start, rows), rows, C, gradScale, dHidden.IsEmpty ? dHidden : dHidden.Slice(start * C, rows * C),
                wantWeightGrad ? _m.LmHeadGradFor(s) : Span<float>.Empty);
            sum += ls;
            count += lc;
        }
        return (sum, count);
    }

    /// <summary>
    /// Forward and backward of Σ token losses × <paramref name="gradScale"/> (e.g. 1 / tokens in the optimizer step);
    /// gradients accumulate (+=) into every trainable parameter. Returns (sum of token losses, number of scored tokens).
    /// </summary>
    public (double LossSum, int Count) ForwardBackward(ReadOnlySpan<int> ids, ReadOnlySpan<int> positions, ReadOnlySpan<int> segmentIds,
        ReadOnlySpan<int> targets, float gradScale)
    {
        Check(ids, positions, segmentIds, targets);
        var c = _m.Config;
        var k = Context.Kernels;
        int n = Tokens;
        Forward(ids, positions, segmentIds, training: true);

        _grads ??= new BlockGradients(c, n);
        _dA ??= new Tensor(DType.F32, n, c.HiddenSize);
        _dB ??= new Tensor(DType.F32, n, c.HiddenSize);

        // LM head + loss: dFinal lives in _dB, then the final norm's backward writes dResidual[L] into _dA.
        _dB.Floats.Clear();
        var result = HeadLoss(targets, gradScale, _dB.Floats, wantWeightGrad: true);
        _dA.Floats.Clear();
        k.RmsNormBackward(_dA.Floats, _m.FinalNorm.GradOrEmpty, _dB.Floats, _residual[c.NumLayers].Floats, _m.FinalNorm.Values, _rstdFinal.Floats, n, c.HiddenSize);

        Tensor dOut = _dA, dIn = _dB;
        var memory = new BatchAttention(c, segmentIds, Batch, Seq);
        var rope = _m.RopeFor(positions);
        for (int l = c.NumLayers - 1; l >= 0; l--)
        {
            var layer = _m.Layers[l];
            if (Recompute)
                DecoderBlock.Forward(Context, layer, c, rope, _acts[0], _residual[l], _residual[l + 1], positions, n, ref memory);
            DecoderBlock.Backward(Context, layer, c, rope, Acts(l), _grads, _residual[l], dOut, dIn, positions, segmentIds, Batch, Seq);
            if (Recompute) Context.Release(layer.Projections);
            (dOut, dIn) = (dIn, dOut);
        }
        // dOut now holds dL/d(embedding output).
        foreach (var s in Routing.Segments)
        {
            if (_m.EmbedGradFor(s) is not { } p) continue;
            int start = s.Start, rows = s.CountIn(n), C = c.HiddenSize;
            k.EmbeddingBackward(p.Grad.Floats, dOut.Floats.Slice(start * C, rows * C), ids.Slice(start, rows), C);
        }
        LastInputGradient = dOut;
        return result;
    }

    /// <summary>dL/d(embedding output) (N,C) after the last <see cref="ForwardBackward"/> (for tests of input gradients).</summary>
    public Tensor? LastInputGradient { get; private set; }

    public void Dispose()
    {
        foreach (var t in _residual) t.Dispose();
        foreach (var a in _acts) a.Dispose();
        _grads?.Dispose(); _dA?.Dispose(); _dB?.Dispose();
        _final.Dispose(); _rstdFinal.Dispose();
        Context.Dispose();
    }
}
