using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using static PeftSharp.Kernels.AttentionTiles;

namespace PeftSharp.Kernels;

public static unsafe partial class Attention
{
    // FlashAttention-2 backward. With Qs = scale·Q, P = exp(Qs·Kᵀ − lse) (masked → 0), Di = rowsum(dO∘O):
    //   dV += Pᵀ·dO,  dP = dO·Vᵀ,  dS = P∘(dP − Di),  dK += dSᵀ·Qs,  dQ += scale · dS·K.
    // One task per (batch row, kv head) owns dk/dv of that kv head and dq of the query heads sharing it: no races,
    // the summation order is fixed, results are deterministic.
    // dq (N,Hq,D) +=, dk, dv (N,Hkv,D) +=.
    public static void Backward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> doutput, ReadOnlySpan<float> output,
        ReadOnlySpan<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<int> segmentIds,
        int batch, int seqLen, int qHeads, int kvHeads, int headDim)
    {
        int n = batch * seqLen;
        CheckShapes(q, k, v, segmentIds, n, qHeads, kvHeads, headDim);
        Need(doutput.Length, (long)n * qHeads * headDim, "doutput");
        Need(output.Length, (long)n * qHeads * headDim, "output");
        Need(lse.Length, (long)n * qHeads, "lse");
        bool wantDq = !dq.IsEmpty, wantDk = !dk.IsEmpty, wantDv = !dv.IsEmpty;
        if (wantDq) Need(dq.Length, (long)n * qHeads * headDim, "dq");
        if (wantDk) Need(dk.Length, (long)n * kvHeads * headDim, "dk");
        if (wantDv) Need(dv.Length, (long)n * kvHeads * headDim, "dv");
        if (n == 0 || !(wantDq || wantDk || wantDv)) return;
        int rep = qHeads / kvHeads, dp = (headDim + 7) & ~7;
        float scale = 1f / MathF.Sqrt(headDim);
        bool packed = !segmentIds.IsEmpty;
        int[]? loArr = packed ? ArrayPool<int>.Shared.Rent(n) : null;
        try
        {
            if (packed) FirstPositionOfSegment(loArr, segmentIds, batch, seqLen);
            fixed (float* pdq = dq) fixed (float* pdk = dk) fixed (float* pdv = dv) fixed (float* pdo = doutput) fixed (float* po = output)
            fixed (float* pl = lse) fixed (float* pq = q) fixed (float* pk = k) fixed (float* pv = v) fixed (int* ps = segmentIds) fixed (int* plo = loArr)
            {
                var p = new Grads { DQ = pdq, DK = pdk, DV = pdv, DO = pdo, O = po, Lse = pl, Q = pq, K = pk, V = pv, Seg = ps, Lo = plo };
                Threads.For(batch * kvHeads, (t0, t1) =>
                {
                    var sc = Scratch.Get(dp, rep * Br);
                    for (int t = t0; t < t1; t++)
                        BackwardGroup(sc, p, t / kvHeads, t % kvHeads, rep, seqLen, qHeads, kvHeads, headDim, dp, scale);
                });
            }
        }
        finally
        {
            if (loArr != null) ArrayPool<int>.Shared.Return(loArr);
        }
    }

    struct Grads
    {
        public float* DQ, DK, DV, DO, O, Lse, Q, K, V;
        public int* Seg, Lo;
    }

    static void BackwardGroup(Scratch sc, in Grads p, int b, int kvh, int rep, int seqLen, int qHeads, int kvHeads, int d, int dp, float scale)
    {
        long row = (long)b * seqLen, kvStride = (long)kvHeads * d, qStride = (long)qHeads * d;
        float* kRow = p.K + (row * kvHeads + kvh) * d, vRow = p.V + (row * kvHeads + kvh) * d;
        int* seg = p.Seg == null ? null : p.Seg + row, lo = p.Lo == null ? null : p.Lo + row;
        for (int j0 = 0; j0 < seqLen; j0 += Bc)
        {
            int bc = Math.Min(Bc, seqLen - j0);
            GatherTransposed(sc.KT, dp, kRow + j0 * kvStride, kvStride, bc, d);
            GatherRows(sc.KRows, dp, kRow + j0 * kvStride, kvStride, bc, d, 1f);
            GatherTransposed(sc.VT, dp, vRow + j0 * kvStride, kvStride, bc, d);
            new Span<float>(sc.DK, bc * dp).Clear();
            new Span<float>(sc.DV, bc * dp).Clear();
            // Query tiles at or after the key tile (causal); the Rep query heads of the group are stacked as Rep·br rows.
            long qOff = (row * qHeads + kvh * rep) * d;
            for (int i0 = j0 / Br * Br; i0 < seqLen; i0 += Br)
            {
                int br = Math.Min(Br, seqLen - i0), rows = rep * br;
                if (j0 + bc - 1 < MinLo(lo, i0, br)) continue; // packed: the whole key tile precedes the queries' segments
                for (int hh = 0; hh < rep; hh++)
                {
                    GatherRows(sc.Q + hh * br * dp, dp, p.Q + qOff + hh * d + i0 * qStride, qStride, br, d, scale);
                    GatherRows(sc.DO + hh * br * dp, dp, p.DO + qOff + hh * d + i0 * qStride, qStride, br, d, 1f);
                    for (int r = 0; r < br; r++)
                    {
                        long tok = row + i0 + r;
                        sc.Lse[hh * br + r] = p.Lse[tok * qHeads + kvh * rep + hh];
                        sc.Di[hh * br + r] = TensorPrimitives.Dot(new ReadOnlySpan<float>(p.DO + qOff + hh * d + (i0 + r) * qStride, d),
                                                                  new ReadOnlySpan<float>(p.O + qOff + hh * d + (i0 + r) * qStride, d));
                    }
                }
                // P (rows, Bc) in S
                Scores(sc.S, sc.Q, rows, sc.KT, dp);
                for (int hh = 0; hh < rep; hh++) Mask(sc.S + hh * br * Bc, br, bc, j0, i0, seg);
                for (int r = 0; r < rows; r++) ExpShifted(sc.S + r * Bc, sc.Lse[r]);
                // dV_j += Pᵀ dO, one head block (br rows) at a time so its P and dO stay in L1 across the bc passes
                if (p.DV != null)
                    for (int hh = 0; hh < rep; hh++)
                        for (int jj = 0; jj < bc; jj++) AccumulateRows(sc.DV + jj * dp, 1f, sc.S + hh * br * Bc + jj, Bc, sc.DO + hh * br * dp, br, dp);
                // dP = dO Vᵀ, then dS = P ∘ (dP − Di) in place in DP
                Scores(sc.DP, sc.DO, rows, sc.VT, dp);
                for (int r = 0; r < rows; r++)
                {
                    float* pr = sc.S + r * Bc, dpr = sc.DP + r * Bc;
                    var di = Vector256.Create(sc.Di[r]);
                    for (int c = 0; c < Bc; c += 8)
                        Vector256.Store(Vector256.Load(pr + c) * (Vector256.Load(dpr + c) - di), dpr + c);
                }
                // dK_j += dSᵀ Qs
                if (p.DK != null)
                    for (int hh = 0; hh < rep; hh++)
                        for (int jj = 0; jj < bc; jj++) AccumulateRows(sc.DK + jj * dp, 1f, sc.DP + hh * br * Bc + jj, Bc, sc.Q + hh * br * dp, br, dp);
                // dq_i += scale · dS K_j
                if (p.DQ != null)
                    for (int hh = 0; hh < rep; hh++)
                        for (int r = 0; r < br; r++)
                        {
                            int rr = hh * br + r;
                            AccumulateRows(sc.DQ + rr * dp, 0f, sc.DP + rr * Bc, 1, sc.KRows, bc, dp);
                            var dst = new Span<float>(p.DQ + qOff + hh * d + (i0 + r) * qStride, d);
                            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(sc.DQ + rr * dp, d), scale, dst, dst);
                        }
            }
            for (int jj = 0; jj < bc; jj++)
            {
                long off = (row * kvHeads + kvh) * d + (j0 + jj) * kvStride;
                if (p.DK != null) { var dst = new Span<float>(p.DK + off, d); TensorPrimitives.Add(dst, new ReadOnlySpan<float>(sc.DK + jj * dp, d), dst); }
                if (p.DV != null) { var dst = new Span<float>(p.DV + off, d); TensorPrimitives.Add(dst, new ReadOnlySpan<float>(sc.DV + jj * dp, d), dst); }
            }
        }
    }
}
