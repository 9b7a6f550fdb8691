using PeftSharp.Kernels;
using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>
/// The decoder block, defined once for training, scoring and KV-cache generation (llm.c style: the forward saves into
/// <see cref="BlockActivations"/>, the backward reads them in reverse order). Pre-norm:
/// h = x + o_proj(attn(rope(q(n1)), rope(k(n1)), v(n1))), n1 = rmsnorm(x); out = h + down(silu(gate(n2))·up(n2)), n2 = rmsnorm(h).
/// The attention's keys and values live where <see cref="IAttentionMemory"/> says (the batch, or a cache). phi3's fused
/// qkv_proj / gate_up_proj run as one projection each and their outputs are split into the same q, k, v / gate, up.
/// </summary>
internal static unsafe class DecoderBlock
{
    /// <summary>output (n,C) = block(input (n,C)) for n rows at <paramref name="positions"/> (RoPE).</summary>
    public static void Forward<TMemory>(PassContext pass, DecoderLayer layer, ModelConfig c, RopeTable rope, BlockActivations a,
        Tensor input, Tensor output, ReadOnlySpan<int> positions, int n, ref TMemory memory)
        where TMemory : IAttentionMemory, allows ref struct
    {
        var k = pass.Kernels;
        int C = c.HiddenSize, D = c.HeadDim, hq = c.NumHeads, hkv = c.NumKvHeads, qd = hq * D, kvd = hkv * D, F = c.IntermediateSize;
        var x = input.Floats[..(n * C)];
        k.RmsNormForward(a.Xn1.Floats[..(n * C)], a.Rstd1.Floats[..n], x, layer.InputNorm.Values, n, C, c.RmsNormEps);

        var xn1 = (float*)a.Xn1.Data;
        var q = a.Q.Floats[..(n * qd)];
        var keys = memory.Keys(layer.Index, a, n);
        var values = memory.Values(layer.Index, a, n);
        if (layer.Qkv is { } qkv)
        {
            // phi3: one projection, output rows q | k | v
            qkv.Forward(pass, xn1, (float*)a.Fused.Data, n);
            FusedColumns.Split(a.Fused.Floats[..(n * (qd + 2 * kvd))], n, q, qd, keys, kvd, values, kvd);
        }
        else if (layer.QNorm != null && layer.KNorm != null)
        {
            layer.Q!.Forward(pass, xn1, (float*)a.QRaw.Data, n);
            layer.K!.Forward(pass, xn1, (float*)a.KRaw.Data, n);
            k.RmsNormForward(q, a.RstdQ.Floats[..(n * hq)], a.QRaw.Floats[..(n * qd)], layer.QNorm.Values, n * hq, D, c.RmsNormEps);
            k.RmsNormForward(keys, a.RstdK.Floats[..(n * hkv)], a.KRaw.Floats[..(n * kvd)], layer.KNorm.Values, n * hkv, D, c.RmsNormEps);
        }
        else
        {
            layer.Q!.Forward(pass, xn1, (float*)a.Q.Data, n);
            fixed (float* kp = keys) layer.K!.Forward(pass, xn1, kp, n);
        }
        if (!layer.Fused) fixed (float* vp = values) layer.V!.Forward(pass, xn1, vp, n);
        k.RopeForward(q, positions, hq, rope);
        k.RopeForward(keys, positions, hkv, rope);

        memory.Attend(pass, layer.Index, a, n);

        // Mid = input + o_proj(attn)
        var mid = a.Mid.Floats[..(n * C)];
        layer.O.Forward(pass, (float*)a.Attn.Data, (float*)a.Mid.Data, n);
        k.Add(mid, x, mid);

        k.RmsNormForward(a.Xn2.Floats[..(n * C)], a.Rstd2.Floats[..n], mid, layer.PostNorm.Values, n, C, c.RmsNormEps);
        var xn2 = (float*)a.Xn2.Data;
        if (layer.GateUp is { } gateUp)
        {
            // phi3: one projection, output rows gate | up
            gateUp.Forward(pass, xn2, (float*)a.Fused.Data, n);
            FusedColumns.Split(a.Fused.Floats[..(n * 2 * F)], n, a.GateOut.Floats[..(n * F)], F, a.UpOut.Floats[..(n * F)], F, default, 0);
        }
        else
        {
            layer.Gate!.Forward(pass, xn2, (float*)a.GateOut.Data, n);
            layer.Up!.Forward(pass, xn2, (float*)a.UpOut.Data, n);
        }
        k.SwiGluForward(a.H.Floats[..(n * F)], a.GateOut.Floats[..(n * F)], a.UpOut.Floats[..(n * F)]);

        // output = Mid + down_proj(H)
        var y = output.Floats[..(n * C)];
        layer.Down.Forward(pass, (float*)a.H.Data, (float*)output.Data, n);
        k.Add(y, mid, y);
    }

    /// <summary>
    /// Given dOut (N,C) = dL/d(block output), writes dIn (N,C) = dL/d(block input) (overwritten) and accumulates the
    /// trainable parameters' gradients. input is the block's forward input; a holds that forward's activations
    /// (keys and values in the batch, as <see cref="BatchAttention"/> keeps them).
    /// </summary>
    public static void Backward(PassContext pass, DecoderLayer layer, ModelConfig c, RopeTable rope, BlockActivations a, BlockGradients g,
        Tensor input, Tensor dOut, Tensor dIn, ReadOnlySpan<int> positions, ReadOnlySpan<int> segmentIds, int batch, int seq)
    {
        var k = pass.Kernels;
        int n = batch * seq, C = c.HiddenSize, D = c.HeadDim, hq = c.NumHeads, hkv = c.NumKvHeads, F = c.IntermediateSize;
        int qd = hq * D, kvd = hkv * D;

        // MLP: out = Mid + Down(H); H = silu(Gate)·Up; Gate/Up = proj(Xn2); Xn2 = norm(Mid)
        // Xn1, Xn2 and H are shared by all blocks: recompute them (same kernels, same inputs → the same bits).
        k.RmsNormForward(a.Xn2.Floats, a.Rstd2.Floats, a.Mid.Floats, layer.PostNorm.Values, n, C, c.RmsNormEps);
        k.SwiGluForward(a.H.Floats, a.GateOut.Floats, a.UpOut.Floats);
        g.DH.Floats.Clear();
        layer.Down.Backward(pass, (float*)dOut.Data, (float*)a.H.Data, (float*)g.DH.Data, n);
        g.DGate.Floats.Clear(); g.DUp.Floats.Clear();
        k.SwiGluBackward(g.DGate.Floats, g.DUp.Floats, g.DH.Floats, a.GateOut.Floats, a.UpOut.Floats);
        g.DXn.Floats.Clear();
        if (layer.GateUp is { } gateUp)
        {
            FusedColumns.Join(g.DFused.Floats[..(n * 2 * F)], n, g.DGate.Floats, F, g.DUp.Floats, F, default, 0);
            gateUp.Backward(pass, (float*)g.DFused.Data, (float*)a.Xn2.Data, (float*)g.DXn.Data, n);
        }
        else
        {
            layer.Gate!.Backward(pass, (float*)g.DGate.Data, (float*)a.Xn2.Data, (float*)g.DXn.Data, n);
            layer.Up!.Backward(pass, (float*)g.DUp.Data, (float*)a.Xn2.Data, (float*)g.DXn.Data, n);
        }
        // dMid = dOut (residual) + norm2 backward; accumulate into dOut, which then holds dMid.
        k.RmsNormBackward(dOut.Floats, layer.PostNorm.GradOrEmpty, g.DXn.Floats, a.Mid.Floats, layer.PostNorm.Values, a.Rstd2.Floats, n, C);
        var dMid = dOut;

        // Attention: Mid = input + O(Attn)
        g.DAttn.Floats.Clear();
        layer.O.Backward(pass, (float*)dMid.Data, (float*)a.Attn.Data, (float*)g.DAttn.Data, n);
        g.DQ.Floats.Clear(); g.DK.Floats.Clear(); g.DV.Floats.Clear();
        k.AttentionBackward(g.DQ.Floats, g.DK.Floats, g.DV.Floats, g.DAttn.Floats, a.Attn.Floats, a.Lse.Floats,
            a.Q.Floats, a.K.Floats, a.V.Floats, segmentIds, batch, seq, hq, hkv, D, c.AttentionWindow(layer.Index));
        k.RopeBackward(g.DQ.Floats, positions, hq, rope);
        k.RopeBackward(g.DK.Floats, positions, hkv, rope);

        g.DXn.Floats.Clear();
        k.RmsNormForward(a.Xn1.Floats, a.Rstd1.Floats, input.Floats, layer.InputNorm.Values, n, C, c.RmsNormEps);
        var xn1 = (float*)a.Xn1.Data;
        if (layer.Qkv is { } qkv)
        {
            FusedColumns.Join(g.DFused.Floats[..(n * (qd + 2 * kvd))], n, g.DQ.Floats, qd, g.DK.Floats, kvd, g.DV.Floats, kvd);
            qkv.Backward(pass, (float*)g.DFused.Data, xn1, (float*)g.DXn.Data, n);
        }
        else if (layer.QNorm != null && layer.KNorm != null)
        {
            g.DQRaw.Floats.Clear(); g.DKRaw.Floats.Clear();
            k.RmsNormBackward(g.DQRaw.Floats, layer.QNorm.GradOrEmpty, g.DQ.Floats, a.QRaw.Floats, layer.QNorm.Values, a.RstdQ.Floats, n * hq, D);
            k.RmsNormBackward(g.DKRaw.Floats, layer.KNorm.GradOrEmpty, g.DK.Floats, a.KRaw.Floats, layer.KNorm.Values, a.RstdK.Floats, n * hkv, D);
            layer.Q!.Backward(pass, (float*)g.DQRaw.Data, xn1, (float*)g.DXn.Data, n);
            layer.K!.Backward(pass, (float*)g.DKRaw.Data, xn1, (float*)g.DXn.Data, n);
        }
        else
        {
            layer.Q!.Backward(pass, (float*)g.DQ.Data, xn1, (float*)g.DXn.Data, n);
            layer.K!.Backward(pass, (float*)g.DK.Data, xn1, (float*)g.DXn.Data, n);
        }
        if (!layer.Fused) layer.V!.Backward(pass, (float*)g.DV.Data, xn1, (float*)g.DXn.Data, n);

        // dIn = dMid (residual) + norm1 backward
        dMid.Floats.CopyTo(dIn.Floats);
        k.RmsNormBackward(dIn.Floats, layer.InputNorm.GradOrEmpty, g.DXn.Floats, input.Floats, layer.InputNorm.Values, a.Rstd1.Floats, n, C);
    }
}
