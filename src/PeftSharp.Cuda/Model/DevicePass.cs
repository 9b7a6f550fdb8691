using ILGPU;
using PeftSharp.Cuda.Kernels;
using PeftSharp.Models;

namespace PeftSharp.Cuda;

/// <summary>
/// A training pass of a <see cref="DeviceModel"/> over batches of one shape (batch × seq), everything on the device:
/// the residual stream of every block, each block's saved activations (q, k, v, attention output and lse, the
/// attention residual, gate and up; the normed inputs and the SwiGLU product are shared by all blocks and recomputed
/// in backward, as on the CPU), the adapters' rank-r activations, gradient scratch, the logits chunk and the RoPE table.
/// The math is <see cref="DecoderBlock"/>'s, op for op.
/// </summary>
internal sealed class DevicePass : IDisposable
{
    readonly GpuDevice _dev;
    readonly DeviceModel _m;
    readonly List<IDisposable> _owned = [];
    readonly DeviceArray<float>[] _residual;
    readonly LayerActs[] _acts;
    readonly DeviceArray<float> _xn1, _xn2, _h, _final, _rstdF, _dA, _dB, _dH, _dGate, _dUp, _dXn, _dAttn, _dQ, _dK, _dV, _delta, _dxa;
    readonly DeviceArray<float> _scratch;
    readonly DeviceCrossEntropy _ce;
    readonly DeviceArray<int> _ids, _positions, _segments, _targets;
    DeviceArray<float> _cos, _sin;
    int _ropeRows;
    readonly int _vocabChunk;

    public int Batch { get; }
    public int Seq { get; }
    public int Tokens => Batch * Seq;

    sealed class LayerActs
    {
        public required DeviceArray<float> Q, K, V, Attn, Lse, Mid, Gate, Up, Rstd1, Rstd2;
        public required Dictionary<DeviceProjection, DeviceArray<float>> Xa;
    }

    public DevicePass(GpuDevice device, DeviceModel model, RopeTableSource rope, int batch, int seq)
    {
        _dev = device; _m = model; Batch = batch; Seq = seq;
        var c = model.Config;
        int n = batch * seq, C = c.HiddenSize, F = c.IntermediateSize, qd = c.NumHeads * c.HeadDim, kvd = c.NumKvHeads * c.HeadDim;
        DeviceArray<T> A<T>(long len) where T : unmanaged { var a = device.Allocate<T>(len); _owned.Add(a); return a; }
        _residual = new DeviceArray<float>[c.NumLayers + 1];
        for (int i = 0; i <= c.NumLayers; i++) _residual[i] = A<float>((long)n * C);
        _acts = new LayerActs[c.NumLayers];
        int maxRank = 1;
        for (int l = 0; l < c.NumLayers; l++)
        {
            var xa = new Dictionary<DeviceProjection, DeviceArray<float>>();
            foreach (var p in model.Layers[l].Projections)
                if (p.Adapter is { } ad) { xa[p] = A<float>((long)n * ad.Rank); maxRank = Math.Max(maxRank, ad.Rank); }
            _acts[l] = new LayerActs
            {
                Q = A<float>((long)n * qd), K = A<float>((long)n * kvd), V = A<float>((long)n * kvd), Attn = A<float>((long)n * qd),
                Lse = A<float>((long)n * c.NumHeads), Mid = A<float>((long)n * C), Gate = A<float>((long)n * F), Up = A<float>((long)n * F),
                Rstd1 = A<float>(n), Rstd2 = A<float>(n), Xa = xa,
            };
        }
        _xn1 = A<float>((long)n * C); _xn2 = A<float>((long)n * C); _h = A<float>((long)n * F);
        _final = A<float>((long)n * C); _rstdF = A<float>(n);
        _dA = A<float>((long)n * C); _dB = A<float>((long)n * C); _dXn = A<float>((long)n * C);
        _dH = A<float>((long)n * F); _dGate = A<float>((long)n * F); _dUp = A<float>((long)n * F);
        _dAttn = A<float>((long)n * qd); _dQ = A<float>((long)n * qd); _dK = A<float>((long)n * kvd); _dV = A<float>((long)n * kvd);
        _delta = A<float>((long)n * c.NumHeads); _dxa = A<float>((long)n * maxRank);
        // The weight scratch holds the largest projection, and the LM head / embedding in vocabulary chunks of that size.
        _vocabChunk = (int)Math.Clamp(model.ScratchFloats / C, 1, c.VocabSize);
        _scratch = A<float>(Math.Max(model.ScratchFloats, (long)_vocabChunk * C));
        _ce = new DeviceCrossEntropy(device, n, c.VocabSize, _vocabChunk);
        _owned.Add(_ce);
        _ids = A<int>(n); _positions = A<int>(n); _segments = A<int>(n); _targets = A<int>(n);
        (_cos, _sin, _ropeRows) = UploadRope(rope, seq - 1);
        _rope = rope;
    }

    readonly RopeTableSource _rope;

    (DeviceArray<float> Cos, DeviceArray<float> Sin, int Rows) UploadRope(RopeTableSource rope, int maxPosition)
    {
        var (cos, sin) = rope.Tables(maxPosition);
        return (_dev.Upload<float>(cos), _dev.Upload<float>(sin), cos.Length / (_m.Config.HeadDim / 2));
    }

    DeviceContextOps Ops => new(_dev.Kernels, _dev.Gemm, _scratch.View);

    /// <summary>Bytes this pass holds on the device.</summary>
    public long Bytes => _owned.OfType<DeviceArray<float>>().Sum(a => a.Bytes) + _owned.OfType<DeviceArray<int>>().Sum(a => a.Bytes)
        + _ce.Bytes + _cos.Bytes + _sin.Bytes;

    /// <summary>
    /// Forward and backward of Σ token losses × gradScale; adapter gradients accumulate (+=) on the device.
    /// Returns (Σ token losses, scored tokens).
    /// </summary>
    public (double LossSum, int Count) ForwardBackward(ReadOnlySpan<int> ids, ReadOnlySpan<int> positions, ReadOnlySpan<int> segmentIds,
        ReadOnlySpan<int> targets, float gradScale)
    {
        var c = _m.Config;
        int n = Tokens, C = c.HiddenSize;
        if (ids.Length != n || positions.Length != n || targets.Length != n || (segmentIds.Length != 0 && segmentIds.Length != n))
            throw new ArgumentException($"batch arrays must have {n} = {Batch}×{Seq} entries");
        int maxPos = 0;
        foreach (int id in ids) if ((uint)id >= (uint)c.VocabSize) throw new PeftException($"token id {id} is outside the vocabulary (size {c.VocabSize})");
        foreach (int t in targets) if (t != -100 && (uint)t >= (uint)c.VocabSize) throw new PeftException($"target id {t} is outside the vocabulary (size {c.VocabSize})");
        foreach (int p in positions)
        {
            if (p < 0) throw new PeftException($"position {p} is negative");
            maxPos = Math.Max(maxPos, p);
        }
        if (maxPos >= _ropeRows)
        {
            _cos.Dispose(); _sin.Dispose();
            (_cos, _sin, _ropeRows) = UploadRope(_rope, maxPos);
        }
        _ids.Upload(ids); _positions.Upload(positions); _targets.Upload(targets);
        bool hasSeg = segmentIds.Length != 0;
        if (hasSeg) _segments.Upload(segmentIds);

        var k = _dev.Kernels;
        k.EmbeddingForward(_residual[0].View, _ids.View, _m.Embed, n);
        for (int l = 0; l < c.NumLayers; l++) BlockForward(l, hasSeg);
        k.RmsNormForward(_final.View, _rstdF.View, _residual[c.NumLayers].View, _m.FinalNorm.View, n, C, c.RmsNormEps);

        _dB.Zero();
        var result = HeadLoss(targets, gradScale);
        _dA.Zero();
        k.RmsNormBackward(_dA.View, null, _dB.View, _residual[c.NumLayers].View, _m.FinalNorm.View, _rstdF.View, n, C);
        DeviceArray<float> dOut = _dA, dIn = _dB;
        for (int l = c.NumLayers - 1; l >= 0; l--)
        {
            BlockBackward(l, dOut, dIn, hasSeg);
            (dOut, dIn) = (dIn, dOut);
        }
        return result;
    }

    AttentionShape Shape(int layer, bool hasSeg)
    {
        var c = _m.Config;
        return new AttentionShape(Seq, c.NumHeads, c.NumKvHeads, c.HeadDim, c.AttentionWindow(layer), hasSeg);
    }

    void BlockForward(int l, bool hasSeg)
    {
        var c = _m.Config;
        var k = _dev.Kernels;
        var ops = Ops;
        var L = _m.Layers[l];
        var a = _acts[l];
        int n = Tokens, C = c.HiddenSize, F = c.IntermediateSize, half = c.HeadDim / 2;
        var x = _residual[l].View;
        k.RmsNormForward(_xn1.View, a.Rstd1.View, x, L.InputNorm.View, n, C, c.RmsNormEps);
        L.Q.Forward(ops, _xn1.View, a.Q.View, n, Xa(a, L.Q));
        L.K.Forward(ops, _xn1.View, a.K.View, n, Xa(a, L.K));
        L.V.Forward(ops, _xn1.View, a.V.View, n, Xa(a, L.V));
        k.Rope(a.Q.View, _positions.View, _cos.View, _sin.View, n, c.NumHeads, half, inverse: false);
        k.Rope(a.K.View, _positions.View, _cos.View, _sin.View, n, c.NumKvHeads, half, inverse: false);
        k.AttentionForward(a.Attn.View, a.Lse.View, a.Q.View, a.K.View, a.V.View, _segments.View, n, Shape(l, hasSeg));
        L.O.Forward(ops, a.Attn.View, a.Mid.View, n, Xa(a, L.O));
        k.Add(a.Mid.View, x, a.Mid.View, (long)n * C);
        k.RmsNormForward(_xn2.View, a.Rstd2.View, a.Mid.View, L.PostNorm.View, n, C, c.RmsNormEps);
        L.Gate.Forward(ops, _xn2.View, a.Gate.View, n, Xa(a, L.Gate));
        L.Up.Forward(ops, _xn2.View, a.Up.View, n, Xa(a, L.Up));
        k.SwiGluForward(_h.View, a.Gate.View, a.Up.View, (long)n * F);
        var y = _residual[l + 1].View;
        L.Down.Forward(ops, _h.View, y, n, Xa(a, L.Down));
        k.Add(y, a.Mid.View, y, (long)n * C);
    }

    static ArrayView<float> Xa(LayerActs a, DeviceProjection p) => a.Xa.TryGetValue(p, out var xa) ? xa.View : default;

    void BlockBackward(int l, DeviceArray<float> dOut, DeviceArray<float> dIn, bool hasSeg)
    {
        var c = _m.Config;
        var k = _dev.Kernels;
        var ops = Ops;
        var L = _m.Layers[l];
        var a = _acts[l];
        int n = Tokens, C = c.HiddenSize, F = c.IntermediateSize, half = c.HeadDim / 2;
        var dxa = _dxa.View;

        // MLP: out = Mid + Down(H), H = silu(Gate)·Up, Gate/Up = proj(Xn2), Xn2 = norm(Mid); Xn2 and H recomputed.
        k.RmsNormForward(_xn2.View, a.Rstd2.View, a.Mid.View, L.PostNorm.View, n, C, c.RmsNormEps);
        k.SwiGluForward(_h.View, a.Gate.View, a.Up.View, (long)n * F);
        _dH.Zero();
        L.Down.Backward(ops, dOut.View, _h.View, _dH.View, n, Xa(a, L.Down), dxa);
        _dGate.Zero(); _dUp.Zero();
        k.SwiGluBackward(_dGate.View, _dUp.View, _dH.View, a.Gate.View, a.Up.View, (long)n * F);
        _dXn.Zero();
        L.Gate.Backward(ops, _dGate.View, _xn2.View, _dXn.View, n, Xa(a, L.Gate), dxa);
        L.Up.Backward(ops, _dUp.View, _xn2.View, _dXn.View, n, Xa(a, L.Up), dxa);
        // dMid = dOut + norm2 backward (accumulated into dOut)
        k.RmsNormBackward(dOut.View, null, _dXn.View, a.Mid.View, L.PostNorm.View, a.Rstd2.View, n, C);
        var dMid = dOut;

        _dAttn.Zero();
        L.O.Backward(ops, dMid.View, a.Attn.View, _dAttn.View, n, Xa(a, L.O), dxa);
        k.AttentionBackward(_dQ.View, _dK.View, _dV.View, _dAttn.View, a.Attn.View, a.Lse.View, a.Q.View, a.K.View, a.V.View,
            _segments.View, _delta.View, n, Shape(l, hasSeg));
        k.Rope(_dQ.View, _positions.View, _cos.View, _sin.View, n, c.NumHeads, half, inverse: true);
        k.Rope(_dK.View, _positions.View, _cos.View, _sin.View, n, c.NumKvHeads, half, inverse: true);

        _dXn.Zero();
        var input = _residual[l].View;
        k.RmsNormForward(_xn1.View, a.Rstd1.View, input, L.InputNorm.View, n, C, c.RmsNormEps);
        L.Q.Backward(ops, _dQ.View, _xn1.View, _dXn.View, n, Xa(a, L.Q), dxa);
        L.K.Backward(ops, _dK.View, _xn1.View, _dXn.View, n, Xa(a, L.K), dxa);
        L.V.Backward(ops, _dV.View, _xn1.View, _dXn.View, n, Xa(a, L.V), dxa);

        // dIn = dMid + norm1 backward
        k.Copy(dMid.View, dIn.View, (long)n * C);
        k.RmsNormBackward(dIn.View, null, _dXn.View, input, L.InputNorm.View, a.Rstd1.View, n, C);
    }

    (double LossSum, int Count) HeadLoss(ReadOnlySpan<int> targets, float gradScale) =>
        _ce.Run(_final.View, _m.LmHead, _targets.View, targets, Tokens, _m.Config.HiddenSize, gradScale, _dB.View, _scratch.View);

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
        _cos.Dispose(); _sin.Dispose();
    }
}

/// <summary>The host RoPE table's rows (cos, sin as (positions, HeadDim/2)) covering positions 0 … maxPosition.</summary>
internal sealed class RopeTableSource(global::PeftSharp.Kernels.RopeTable table)
{
    public (float[] Cos, float[] Sin) Tables(int maxPosition) => table.TablesFor([maxPosition]);
}
