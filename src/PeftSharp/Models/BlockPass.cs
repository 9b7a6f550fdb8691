using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using PeftSharp.Kernels;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>
/// Forward and backward of one decoder block over a batch (llm.c style: forward saves into
/// <see cref="BlockActivations"/>, backward reads them in reverse order).
/// </summary>
public static unsafe class BlockPass
{
    /// <summary>
    /// output (N,C) = block(input (N,C)). tokens: positions (N) for RoPE, segmentIds (N) or empty for packing.
    /// </summary>
    public static void Forward(DecoderLayer layer, ModelConfig c, RopeTable rope, BlockActivations a,
        Tensor input, Tensor output, ReadOnlySpan<int> positions, ReadOnlySpan<int> segmentIds, int batch, int seq, bool training)
    {
        int n = batch * seq, C = c.HiddenSize, D = c.HeadDim, hq = c.NumHeads, hkv = c.NumKvHeads;
        RmsNorm.Forward(a.Xn1.Floats, a.Rstd1.Floats, input.Floats, layer.InputNorm.Values, n, C, c.RmsNormEps);

        var xn1 = (float*)a.Xn1.Data;
        if (layer.QNorm != null && layer.KNorm != null)
        {
            layer.Q.Forward(xn1, (float*)a.QRaw.Data, n, training);
            layer.K.Forward(xn1, (float*)a.KRaw.Data, n, training);
            RmsNorm.Forward(a.Q.Floats, a.RstdQ.Floats, a.QRaw.Floats, layer.QNorm.Values, n * hq, D, c.RmsNormEps);
            RmsNorm.Forward(a.K.Floats, a.RstdK.Floats, a.KRaw.Floats, layer.KNorm.Values, n * hkv, D, c.RmsNormEps);
        }
        else
        {
            layer.Q.Forward(xn1, (float*)a.Q.Data, n, training);
            layer.K.Forward(xn1, (float*)a.K.Data, n, training);
        }
        layer.V.Forward(xn1, (float*)a.V.Data, n, training);
        Rope.Forward(a.Q.Floats, positions, hq, rope);
        Rope.Forward(a.K.Floats, positions, hkv, rope);

        Attention.Forward(a.Attn.Floats, a.Lse.Floats, a.Q.Floats, a.K.Floats, a.V.Floats, segmentIds, batch, seq, hq, hkv, D);

        // Mid = input + o_proj(attn)
        layer.O.Forward((float*)a.Attn.Data, (float*)a.Mid.Data, n, training);
        TensorPrimitives.Add(a.Mid.Floats, input.Floats, a.Mid.Floats);

        RmsNorm.Forward(a.Xn2.Floats, a.Rstd2.Floats, a.Mid.Floats, layer.PostNorm.Values, n, C, c.RmsNormEps);
        var xn2 = (float*)a.Xn2.Data;
        layer.Gate.Forward(xn2, (float*)a.GateOut.Data, n, training);
        layer.Up.Forward(xn2, (float*)a.UpOut.Data, n, training);
        SwiGlu.Forward(a.H.Floats, a.GateOut.Floats, a.UpOut.Floats);

        // output = Mid + down_proj(H)
        layer.Down.Forward((float*)a.H.Data, (float*)output.Data, n, training);
        TensorPrimitives.Add(output.Floats, a.Mid.Floats, output.Floats);
    }

    /// <summary>
    /// Given dOut (N,C) = dL/d(block output), writes dIn (N,C) = dL/d(block input) (overwritten) and accumulates the
    /// trainable parameters' gradients. input is the block's forward input.
    /// </summary>
    public static void Backward(DecoderLayer layer, ModelConfig c, RopeTable rope, BlockActivations a, BlockGradients g,
        Tensor input, Tensor dOut, Tensor dIn, ReadOnlySpan<int> positions, ReadOnlySpan<int> segmentIds, int batch, int seq)
    {
        int n = batch * seq, C = c.HiddenSize, D = c.HeadDim, hq = c.NumHeads, hkv = c.NumKvHeads;

        // MLP: out = Mid + Down(H); H = silu(Gate)·Up; Gate/Up = proj(Xn2); Xn2 = norm(Mid)
        // Xn1, Xn2 and H are shared by all blocks: recompute them (same kernels, same inputs → the same bits).
        RmsNorm.Forward(a.Xn2.Floats, a.Rstd2.Floats, a.Mid.Floats, layer.PostNorm.Values, n, C, c.RmsNormEps);
        SwiGlu.Forward(a.H.Floats, a.GateOut.Floats, a.UpOut.Floats);
        g.DH.Floats.Clear();
        layer.Down.Backward((float*)dOut.Data, (float*)a.H.Data, (float*)g.DH.Data, n);
        g.DGate.Floats.Clear(); g.DUp.Floats.Clear();
        SwiGlu.Backward(g.DGate.Floats, g.DUp.Floats, g.DH.Floats, a.GateOut.Floats, a.UpOut.Floats);
        g.DXn.Floats.Clear();
        layer.Gate.Backward((float*)g.DGate.Data, (float*)a.Xn2.Data, (float*)g.DXn.Data, n);
        layer.Up.Backward((float*)g.DUp.Data, (float*)a.Xn2.Data, (float*)g.DXn.Data, n);
        // dMid = dOut (residual) + norm2 backward; accumulate into dOut, which then holds dMid.
        RmsNorm.Backward(dOut.Floats, layer.PostNorm.GradOrEmpty, g.DXn.Floats, a.Mid.Floats, layer.PostNorm.Values, a.Rstd2.Floats, n, C);
        var dMid = dOut;

        // Attention: Mid = input + O(Attn)
        g.DAttn.Floats.Clear();
        layer.O.Backward((float*)dMid.Data, (float*)a.Attn.Data, (float*)g.DAttn.Data, n);
        g.DQ.Floats.Clear(); g.DK.Floats.Clear(); g.DV.Floats.Clear();
        Attention.Backward(g.DQ.Floats, g.DK.Floats, g.DV.Floats, g.DAttn.Floats, a.Attn.Floats, a.Lse.Floats,
            a.Q.Floats, a.K.Floats, a.V.Floats, segmentIds, batch, seq, hq, hkv, D);
        Rope.Backward(g.DQ.Floats, positions, hq, rope);
        Rope.Backward(g.DK.Floats, positions, hkv, rope);

        g.DXn.Floats.Clear();
        RmsNorm.Forward(a.Xn1.Floats, a.Rstd1.Floats, input.Floats, layer.InputNorm.Values, n, C, c.RmsNormEps);
        var xn1 = (float*)a.Xn1.Data;
        if (layer.QNorm != null && layer.KNorm != null)
        {
            g.DQRaw.Floats.Clear(); g.DKRaw.Floats.Clear();
            RmsNorm.Backward(g.DQRaw.Floats, layer.QNorm.GradOrEmpty, g.DQ.Floats, a.QRaw.Floats, layer.QNorm.Values, a.RstdQ.Floats, n * hq, D);
            RmsNorm.Backward(g.DKRaw.Floats, layer.KNorm.GradOrEmpty, g.DK.Floats, a.KRaw.Floats, layer.KNorm.Values, a.RstdK.Floats, n * hkv, D);
            layer.Q.Backward((float*)g.DQRaw.Data, xn1, (float*)g.DXn.Data, n);
            layer.K.Backward((float*)g.DKRaw.Data, xn1, (float*)g.DXn.Data, n);
        }
        else
        {
            layer.Q.Backward((float*)g.DQ.Data, xn1, (float*)g.DXn.Data, n);
            layer.K.Backward((float*)g.DK.Data, xn1, (float*)g.DXn.Data, n);
        }
        layer.V.Backward((float*)g.DV.Data, xn1, (float*)g.DXn.Data, n);

        // dIn = dMid (residual) + norm1 backward
        dMid.Floats.CopyTo(dIn.Floats);
        RmsNorm.Backward(dIn.Floats, layer.InputNorm.GradOrEmpty, g.DXn.Floats, input.Floats, layer.InputNorm.Values, a.Rstd1.Floats, n, C);
    }
}
