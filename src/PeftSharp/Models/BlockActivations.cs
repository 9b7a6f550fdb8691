using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>
/// What one decoder block's forward saves for its backward, for N = batch·seq tokens. With activation recompute a
/// single instance is shared by all blocks and refilled just before each block's backward. Without it, the cheap
/// elementwise results Xn1 = norm(input), Xn2 = norm(Mid) and H = silu(Gate)·Up are still shared by all blocks
/// (the constructor's <c>shareWith</c>) and recomputed by the backward from what is saved: 3 of the 7 N×(C or F) tensors.
/// </summary>
internal sealed class BlockActivations : IDisposable
{
    public readonly Tensor Xn1, Rstd1;          // (N,C), (N)      input RMSNorm
    public readonly Tensor QRaw, KRaw;          // (N,Hq·D), (N,Hkv·D) projections before q/k norm (qwen3 only)
    public readonly Tensor RstdQ, RstdK;        // (N·Hq), (N·Hkv)  per-head q/k norm (qwen3 only)
    public readonly Tensor Q, K, V;             // (N,Hq·D), (N,Hkv·D), (N,Hkv·D)  after norm and RoPE
    public readonly Tensor Attn, Lse;           // (N,Hq·D), (N·Hq)
    public readonly Tensor Mid;                 // (N,C) residual after attention
    public readonly Tensor Xn2, Rstd2;          // (N,C), (N)      post-attention RMSNorm
    public readonly Tensor GateOut, UpOut, H;   // (N,F) each; H = silu(gate)·up
    public readonly Tensor Fused;               // (N, max(Hq·D+2·Hkv·D, 2F)) fused projection output before the split (phi3 only; shared)
    public readonly Tensor AttnOut, RstdAttnOut; // (N,C), (N)  o_proj output before post_attention_layernorm (gemma only)
    public readonly Tensor MlpOut, RstdMlpOut;   // (N,C), (N)  down_proj output before post_feedforward_layernorm (gemma only)

    readonly bool _ownsShared;

    public BlockActivations(ModelConfig c, int n, BlockActivations? shareWith = null)
    {
        int qd = c.NumHeads * c.HeadDim, kvd = c.NumKvHeads * c.HeadDim, f = c.IntermediateSize;
        _ownsShared = shareWith == null;
        Xn1 = shareWith?.Xn1 ?? new Tensor(DType.F32, n, c.HiddenSize); Rstd1 = new Tensor(DType.F32, n);
        bool qk = c.QkNorm;
        QRaw = new Tensor(DType.F32, qk ? n : 0, qd); KRaw = new Tensor(DType.F32, qk ? n : 0, kvd);
        RstdQ = new Tensor(DType.F32, qk ? n * c.NumHeads : 0); RstdK = new Tensor(DType.F32, qk ? n * c.NumKvHeads : 0);
        Q = new Tensor(DType.F32, n, qd); K = new Tensor(DType.F32, n, kvd); V = new Tensor(DType.F32, n, kvd);
        Attn = new Tensor(DType.F32, n, qd); Lse = new Tensor(DType.F32, n * c.NumHeads);
        Mid = new Tensor(DType.F32, n, c.HiddenSize);
        Xn2 = shareWith?.Xn2 ?? new Tensor(DType.F32, n, c.HiddenSize); Rstd2 = new Tensor(DType.F32, n);
        GateOut = new Tensor(DType.F32, n, f); UpOut = new Tensor(DType.F32, n, f); H = shareWith?.H ?? new Tensor(DType.F32, n, f);
        Fused = shareWith?.Fused ?? new Tensor(DType.F32, c.FusedProjections ? n : 0, FusedWidth(c));
        int g = c.IsGemma ? n : 0;
        AttnOut = new Tensor(DType.F32, g, c.HiddenSize); RstdAttnOut = new Tensor(DType.F32, g);
        MlpOut = new Tensor(DType.F32, g, c.HiddenSize); RstdMlpOut = new Tensor(DType.F32, g);
    }

    /// <summary>Widest fused projection output: qkv (Hq·D + 2·Hkv·D) or gate_up (2F).</summary>
    public static int FusedWidth(ModelConfig c) => Math.Max(c.NumHeads * c.HeadDim + 2 * c.NumKvHeads * c.HeadDim, 2 * c.IntermediateSize);

    IEnumerable<Tensor> All => _ownsShared
        ? [Xn1, Rstd1, QRaw, KRaw, RstdQ, RstdK, Q, K, V, Attn, Lse, Mid, Xn2, Rstd2, GateOut, UpOut, H, Fused, AttnOut, RstdAttnOut, MlpOut, RstdMlpOut]
        : [Rstd1, QRaw, KRaw, RstdQ, RstdK, Q, K, V, Attn, Lse, Mid, Rstd2, GateOut, UpOut, AttnOut, RstdAttnOut, MlpOut, RstdMlpOut];
    public long Bytes => All.Sum(t => t.ByteLength);
    public void Dispose() { foreach (var t in All) t.Dispose(); }
}

/// <summary>Gradient scratch shared by all blocks during backward (N tokens).</summary>
internal sealed class BlockGradients : IDisposable
{
    public readonly Tensor DXn, DAttn, DQ, DK, DV, DGate, DUp, DH, DQRaw, DKRaw;
    public readonly Tensor DFused;   // gradient of a fused projection's output (phi3 only)
    public readonly Tensor DNormIn;  // (N,C) gradient of a sandwich norm's input: attention or MLP output (gemma only)

    public BlockGradients(ModelConfig c, int n)
    {
        int qd = c.NumHeads * c.HeadDim, kvd = c.NumKvHeads * c.HeadDim, f = c.IntermediateSize;
        DXn = new Tensor(DType.F32, n, c.HiddenSize);
        DAttn = new Tensor(DType.F32, n, qd);
        DQ = new Tensor(DType.F32, n, qd); DK = new Tensor(DType.F32, n, kvd); DV = new Tensor(DType.F32, n, kvd);
        DGate = new Tensor(DType.F32, n, f); DUp = new Tensor(DType.F32, n, f); DH = new Tensor(DType.F32, n, f);
        DQRaw = new Tensor(DType.F32, c.QkNorm ? n : 0, qd); DKRaw = new Tensor(DType.F32, c.QkNorm ? n : 0, kvd);
        DFused = new Tensor(DType.F32, c.FusedProjections ? n : 0, BlockActivations.FusedWidth(c));
        DNormIn = new Tensor(DType.F32, c.IsGemma ? n : 0, c.HiddenSize);
    }

    IEnumerable<Tensor> All => [DXn, DAttn, DQ, DK, DV, DGate, DUp, DH, DQRaw, DKRaw, DFused, DNormIn];
    public long Bytes => All.Sum(t => t.ByteLength);
    public void Dispose() { foreach (var t in All) t.Dispose(); }
}
