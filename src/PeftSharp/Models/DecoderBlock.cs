using PeftSharp.Compute;
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
/// Gemma 2 / 3 (transformers' Gemma2DecoderLayer / Gemma3DecoderLayer, eager attention): norms scale by (1 + w);
/// h = x + post_attention_norm(o_proj(attn)); out = h + post_feedforward_norm(down(gelu_tanh(gate(n2))·up(n2))),
/// n2 = pre_feedforward_norm(h); q is scaled so scores are q·k·query_pre_attn_scalar^-½, and the attention may soft-cap.
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
        k.NormForward(layer.InputNorm, a.Xn1.Floats[..(n * C)], a.Rstd1.Floats[..n], x, n, C, c.RmsNormEps);

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
            k.NormForward(layer.QNorm, q, a.RstdQ.Floats[..(n * hq)], a.QRaw.Floats[..(n * qd)], n * hq, D, c.RmsNormEps);
            k.NormForward(layer.KNorm, keys, a.RstdK.Floats[..(n * hkv)], a.KRaw.Floats[..(n * kvd)], n * hkv, D, c.RmsNormEps);
        }
        else
        {
            layer.Q!.Forward(pass, xn1, (float*)a.Q.Data, n);
            fixed (float* kp = keys) layer.K!.Forward(pass, xn1, kp, n);
        }
        if (!layer.Fused) fixed (float* vp = values) layer.V!.Forward(pass, xn1, vp, n);
        k.RopeForward(q, positions, hq, rope);
        k.RopeForward(keys, positions, hkv, rope);
        // query_pre_attn_scalar ≠ head_dim (gemma): the kernels scale by 1/√head_dim, so q carries the rest
        if (c.QueryScale != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(q, c.QueryScale, q);

        memory.Attend(pass, layer.Index, a, n);

        // Mid = input + o_proj(attn)   (gemma: input + post_attention_norm(o_proj(attn)))
        var mid = a.Mid.Floats[..(n * C)];
        if (layer.SandwichNorms)
        {
            layer.O.Forward(pass, (float*)a.Attn.Data, (float*)a.AttnOut.Data, n);
            k.NormForward(layer.PostNorm, mid, a.RstdAttnOut.Floats[..n], a.AttnOut.Floats[..(n * C)], n, C, c.RmsNormEps);
        }
        else layer.O.Forward(pass, (float*)a.Attn.Data, (float*)a.Mid.Data, n);
        k.Add(mid, x, mid);

        k.NormForward(MlpInputNorm(layer), a.Xn2.Floats[..(n * C)], a.Rstd2.Floats[..n], mid, n, C, c.RmsNormEps);
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
        Activation(k, c, a.H.Floats[..(n * F)], a.GateOut.Floats[..(n * F)], a.UpOut.Floats[..(n * F)]);

        // output = Mid + down_proj(H)   (gemma: Mid + post_feedforward_norm(down_proj(H)))
        var y = output.Floats[..(n * C)];
        if (layer.SandwichNorms)
        {
            layer.Down.Forward(pass, (float*)a.H.Data, (float*)a.MlpOut.Data, n);
            k.NormForward(layer.PostFfnNorm!, y, a.RstdMlpOut.Floats[..n], a.MlpOut.Floats[..(n * C)], n, C, c.RmsNormEps);
        }
        else layer.Down.Forward(pass, (float*)a.H.Data, (float*)output.Data, n);
        k.Add(y, mid, y);
    }

    /// <summary>The MLP's input norm: post_attention_layernorm (Llama family) or pre_feedforward_layernorm (gemma).</summary>
    static Norm MlpInputNorm(DecoderLayer layer) => layer.PreFfnNorm ?? layer.PostNorm;

    /// <summary>H = silu(gate)·up (SwiGLU) or gelu_tanh(gate)·up (gemma's GeGLU).</summary>
    static void Activation(IComputeBackend k, ModelConfig c, Span<float> h, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        if (c.IsGemma) k.GeGluForward(h, gate, up);
        else k.SwiGluForward(h, gate, up);
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
        k.NormForward(MlpInputNorm(layer), a.Xn2.Floats, a.Rstd2.Floats, a.Mid.Floats, n, C, c.RmsNormEps);
        Activation(k, c, a.H.Floats, a.GateOut.Floats, a.UpOut.Floats);
        g.DH.Floats.Clear();
        // gemma: out = Mid + post_ffn_norm(MlpOut): dMlpOut = that norm's backward of dOut
        var dDown = dOut;
        if (layer.SandwichNorms)
        {
            g.DNormIn.Floats.Clear();
            k.NormBackward(layer.PostFfnNorm!, g.DNormIn.Floats, dOut.Floats, a.MlpOut.Floats, a.RstdMlpOut.Floats, n, C);
            dDown = g.DNormIn;
        }
        layer.Down.Backward(pass, (float*)dDown.Data, (float*)a.H.Data, (float*)g.DH.Data, n);
        g.DGate.Floats.Clear(); g.DUp.Floats.Clear();
        if (c.IsGemma) k.GeGluBackward(g.DGate.Floats, g.DUp.Floats, g.DH.Floats, a.GateOut.Floats, a.UpOut.Floats);
        else k.SwiGluBackward(g.DGate.Floats, g.DUp.Floats, g.DH.Floats, a.GateOut.Floats, a.UpOut.Floats);
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
        k.NormBackward(MlpInputNorm(layer), dOut.Floats, g.DXn.Floats, a.Mid.Floats, a.Rstd2.Floats, n, C);
        var dMid = dOut;

        // Attention: Mid = input + O(Attn)   (gemma: input + post_attention_norm(O(Attn)))
        var dO = dMid;
        if (layer.SandwichNorms)
        {
            g.DNormIn.Floats.Clear();
            k.NormBackward(layer.PostNorm, g.DNormIn.Floats, dMid.Floats, a.AttnOut.Floats, a.RstdAttnOut.Floats, n, C);
            dO = g.DNormIn;
        }
        g.DAttn.Floats.Clear();
        layer.O.Backward(pass, (float*)dO.Data, (float*)a.Attn.Data, (float*)g.DAttn.Data, n);
        g.DQ.Floats.Clear(); g.DK.Floats.Clear(); g.DV.Floats.Clear();
        if (c.AttentionSoftcap != 0)
            k.AttentionBackward(g.DQ.Floats, g.DK.Floats, g.DV.Floats, g.DAttn.Floats, a.Attn.Floats, a.Lse.Floats,
                a.Q.Floats, a.K.Floats, a.V.Floats, segmentIds, batch, seq, hq, hkv, D, c.AttentionWindow(layer.Index), c.AttentionSoftcap);
        else
            k.AttentionBackward(g.DQ.Floats, g.DK.Floats, g.DV.Floats, g.DAttn.Floats, a.Attn.Floats, a.Lse.Floats,
                a.Q.Floats, a.K.Floats, a.V.Floats, segmentIds, batch, seq, hq, hkv, D, c.AttentionWindow(layer.Index));
        if (c.QueryScale != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(g.DQ.Floats, c.QueryScale, g.DQ.Floats);
        k.RopeBackward(g.DQ.Floats, positions, hq, rope);
        k.RopeBackward(g.DK.Floats, positions, hkv, rope);

        g.DXn.Floats.Clear();
        k.NormForward(layer.InputNorm, a.Xn1.Floats, a.Rstd1.Floats, input.Floats, n, C, c.RmsNormEps);
        var xn1 = (float*)a.Xn1.Data;
        if (layer.Qkv is { } qkv)
        {
            FusedColumns.Join(g.DFused.Floats[..(n * (qd + 2 * kvd))], n, g.DQ.Floats, qd, g.DK.Floats, kvd, g.DV.Floats, kvd);
            qkv.Backward(pass, (float*)g.DFused.Data, xn1, (float*)g.DXn.Data, n);
        }
        else if (layer.QNorm != null && layer.KNorm != null)
        {
            g.DQRaw.Floats.Clear(); g.DKRaw.Floats.Clear();
            k.NormBackward(layer.QNorm, g.DQRaw.Floats, g.DQ.Floats, a.QRaw.Floats, a.RstdQ.Floats, n * hq, D);
            k.NormBackward(layer.KNorm, g.DKRaw.Floats, g.DK.Floats, a.KRaw.Floats, a.RstdK.Floats, n * hkv, D);
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
        k.NormBackward(layer.InputNorm, dIn.Floats, g.DXn.Floats, input.Floats, a.Rstd1.Floats, n, C);
    }
}
