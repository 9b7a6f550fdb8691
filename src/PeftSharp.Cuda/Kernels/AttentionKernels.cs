using ILGPU;
using ILGPU.Algorithms;

namespace PeftSharp.Cuda.Kernels;

/// <summary>The shape of a causal GQA attention call (passed by value to the kernels).</summary>
internal readonly struct AttentionShape
{
    public readonly int SeqLen, QHeads, KvHeads, HeadDim, Window, HasSegments;
    public readonly float Scale;

    public AttentionShape(int seqLen, int qHeads, int kvHeads, int headDim, int window, bool hasSegments)
    {
        SeqLen = seqLen; QHeads = qHeads; KvHeads = kvHeads; HeadDim = headDim; Window = window;
        HasSegments = hasSegments ? 1 : 0;
        Scale = 1f / MathF.Sqrt(headDim);
    }

    public int Group => QHeads / KvHeads;
}

/// <summary>
/// Causal attention with grouped KV heads, optional sliding window (query i sees keys j with i − j &lt; window) and
/// packing segments (a key is visible only inside its query's segment). q/out (N, Hq, D), k/v (N, Hkv, D), lse (N, Hq),
/// N = batch·seqLen. Forward: one thread per (token, q head) with an online softmax. Backward: delta = rowsum(dO∘O);
/// dq by one thread per (token, q head); dk, dv by one thread per (token, kv head) walking the queries that see it —
/// no atomics, so results do not depend on scheduling.
/// </summary>
internal static class AttentionKernels
{
    static bool Visible(ArrayView<int> seg, AttentionShape s, int qRow, int kRow) =>
        s.HasSegments == 0 || seg[qRow] == seg[kRow];

    static int FirstKey(AttentionShape s, int t) => s.Window > 0 ? XMath.Max(0, t - s.Window + 1) : 0;

    static float Dot(ArrayView<float> a, long ao, ArrayView<float> b, long bo, int d)
    {
        float acc = 0;
        for (int x = 0; x < d; x++) acc += a[ao + x] * b[bo + x];
        return acc;
    }

    public static void Forward(Index1D i, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> output,
        ArrayView<float> lse, ArrayView<int> seg, AttentionShape s)
    {
        int d = s.HeadDim;
        int row = i / s.QHeads, h = i - row * s.QHeads;
        int b = row / s.SeqLen, t = row - b * s.SeqLen;
        int g = h / s.Group;
        long qo = (long)(int)i * d;
        for (int x = 0; x < d; x++) output[qo + x] = 0f;
        float m = float.NegativeInfinity, l = 0f;
        for (int j = FirstKey(s, t); j <= t; j++)
        {
            int kRow = b * s.SeqLen + j;
            if (!Visible(seg, s, row, kRow)) continue;
            long ko = ((long)kRow * s.KvHeads + g) * d;
            float score = Dot(q, qo, k, ko, d) * s.Scale;
            float mNew = XMath.Max(m, score);
            float corr = XMath.Exp(m - mNew);
            float p = XMath.Exp(score - mNew);
            l = l * corr + p;
            for (int x = 0; x < d; x++) output[qo + x] = output[qo + x] * corr + p * v[ko + x];
            m = mNew;
        }
        float inv = 1f / l;
        for (int x = 0; x < d; x++) output[qo + x] *= inv;
        lse[i] = m + XMath.Log(l);
    }

    // delta (N, Hq) = Σ_x dO ∘ O
    public static void Delta(Index1D i, ArrayView<float> dout, ArrayView<float> output, ArrayView<float> delta, int d)
    {
        long o = (long)(int)i * d;
        delta[i] = Dot(dout, o, output, o, d);
    }

    // dq_i = scale · Σ_j P_ij (dO_i·v_j − delta_i) k_j  (overwrites dq)
    public static void BackwardQ(Index1D i, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> dout,
        ArrayView<float> lse, ArrayView<float> delta, ArrayView<float> dq, ArrayView<int> seg, AttentionShape s)
    {
        int d = s.HeadDim;
        int row = i / s.QHeads, h = i - row * s.QHeads;
        int b = row / s.SeqLen, t = row - b * s.SeqLen;
        int g = h / s.Group;
        long qo = (long)(int)i * d;
        for (int x = 0; x < d; x++) dq[qo + x] = 0f;
        float li = lse[i], di = delta[i];
        for (int j = FirstKey(s, t); j <= t; j++)
        {
            int kRow = b * s.SeqLen + j;
            if (!Visible(seg, s, row, kRow)) continue;
            long ko = ((long)kRow * s.KvHeads + g) * d;
            float p = XMath.Exp(Dot(q, qo, k, ko, d) * s.Scale - li);
            float ds = p * (Dot(dout, qo, v, ko, d) - di) * s.Scale;
            for (int x = 0; x < d; x++) dq[qo + x] += ds * k[ko + x];
        }
    }

    // dv_j = Σ_(i,h) P_ij dO_i;  dk_j = scale · Σ_(i,h) dS_ij q_i, over the queries i ≥ j of the group's q heads that see j
    // (overwrites dk, dv)
    public static void BackwardKv(Index1D i, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> dout,
        ArrayView<float> lse, ArrayView<float> delta, ArrayView<float> dk, ArrayView<float> dv, ArrayView<int> seg, AttentionShape s)
    {
        int d = s.HeadDim;
        int kRow = i / s.KvHeads, g = i - kRow * s.KvHeads;
        int b = kRow / s.SeqLen, j = kRow - b * s.SeqLen;
        long ko = (long)(int)i * d;
        for (int x = 0; x < d; x++) { dk[ko + x] = 0f; dv[ko + x] = 0f; }
        int last = s.Window > 0 ? XMath.Min(s.SeqLen - 1, j + s.Window - 1) : s.SeqLen - 1;
        for (int t = j; t <= last; t++)
        {
            int qRow = b * s.SeqLen + t;
            if (!Visible(seg, s, qRow, kRow)) continue;
            for (int h = g * s.Group; h < (g + 1) * s.Group; h++)
            {
                long qi = (long)qRow * s.QHeads + h, qo = qi * d;
                float p = XMath.Exp(Dot(q, qo, k, ko, d) * s.Scale - lse[qi]);
                float ds = p * (Dot(dout, qo, v, ko, d) - delta[qi]) * s.Scale;
                for (int x = 0; x < d; x++)
                {
                    dv[ko + x] += p * dout[qo + x];
                    dk[ko + x] += ds * q[qo + x];
                }
            }
        }
    }
}
