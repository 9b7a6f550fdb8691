using PeftSharp.Compute;
using System.Runtime.CompilerServices;
using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using static PeftSharp.Kernels.AttentionTiles;

namespace PeftSharp.Kernels;

internal static unsafe partial class Attention
{
    // FlashAttention-2 backward. With Qs = scale·Q, P = exp(Qs·Kᵀ − lse) (masked → 0), Di = rowsum(dO∘O):
    //   dV += Pᵀ·dO,  dP = dO·Vᵀ,  dS = P∘(dP − Di),  dK += dSᵀ·Qs,  dQ += scale · dS·K.
    // With soft-capping, P is of the capped scores c·tanh(s/c) and dS is multiplied by 1 − tanh² before dK and dQ.
    // One task per (batch row, kv head, range of key tiles) owns dk/dv of those keys: no races. dq of the group's
    // query heads goes straight to dq when each (row, kv head) is one task; when there are too few (row, kv head)
    // pairs to keep the threads busy, the key tiles are split into ranges of equal work and each range adds into its
    // own dq partial, summed afterwards in range order. Results are deterministic for a given thread count.
    // dq (N,Hq,D) +=, dk, dv (N,Hkv,D) +=.
    public static void Backward(ComputeContext ctx, Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> doutput, ReadOnlySpan<float> output,
        ReadOnlySpan<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<int> segmentIds,
        int batch, int seqLen, int qHeads, int kvHeads, int headDim, int window = 0, float softcap = 0)
    {
        CheckWindow(window);
        CheckSoftcap(softcap);
        int w = WindowOrUnlimited(window);
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
                int groups = batch * kvHeads, kTiles = (seqLen + Bc - 1) / Bc;
                long dqLen = (long)n * qHeads * headDim;
                int splits = groups >= 4 * ctx.Threads ? 1 : Math.Min(kTiles, (4 * ctx.Threads + groups - 1) / groups);
                if (wantDq) splits = (int)Math.Max(1, Math.Min(splits, DqPartialBudget / dqLen)); // each split costs a dq-sized buffer
                int[] bounds = SplitKeyTiles(kTiles, splits);
                float[]? partials = wantDq && splits > 1 ? ArrayPool<float>.Shared.Rent((int)(splits * dqLen)) : null;
                try
                {
                    fixed (float* pPart = partials)
                    {
                        float* part = pPart;
                        if (part != null) new Span<float>(part, (int)(splits * dqLen)).Clear();
                        ctx.For(groups * splits, (t0, t1) =>
                        {
                            using var sc = Scratch.Rent(ctx, dp, rep * Br);
                            for (int t = t0; t < t1; t++)
                            {
                                int s = t % splits, grp = t / splits;
                                var ps = p;
                                if (part != null) ps.DQ = part + s * dqLen;
                                BackwardGroup(sc, ps, grp / kvHeads, grp % kvHeads, bounds[s], bounds[s + 1], rep, seqLen, qHeads, kvHeads, headDim, dp, scale, w, softcap);
                            }
                        });
                        if (part != null)
                        {
                            float* dqAll = pdq;
                            ctx.For((int)dqLen, (e0, e1) =>
                            {
                                var dst = new Span<float>(dqAll + e0, e1 - e0);
                                for (int s = 0; s < splits; s++) TensorPrimitives.Add(dst, new ReadOnlySpan<float>(part + s * dqLen + e0, e1 - e0), dst);
                            }, minPerThread: 4096);
                        }
                    }
                }
                finally
                {
                    if (partials != null) ArrayPool<float>.Shared.Return(partials);
                }
            }
        }
        finally
        {
            if (loArr != null) ArrayPool<int>.Shared.Return(loArr);
        }
    }

    /// <summary>Most floats the dq partials may take (64 MiB); beyond it fewer splits are used.</summary>
    const long DqPartialBudget = 16L << 20;

    struct Grads
    {
        public float* DQ, DK, DV, DO, O, Lse, Q, K, V;
        public int* Seg, Lo;
    }

    /// <summary>Boundaries (splits+1) over key tiles so that each range holds about the same work; key tile j
    /// meets the kTiles − j query tiles at or after it.</summary>
    static int[] SplitKeyTiles(int kTiles, int splits)
    {
        var bounds = new int[splits + 1];
        long total = (long)kTiles * (kTiles + 1) / 2, acc = 0;
        int j = 0;
        for (int s = 1; s < splits; s++)
        {
            long target = total * s / splits;
            // take tile j while its midpoint stays within the target (rounds to the nearer boundary)
            while (j < kTiles && acc + (kTiles - j) / 2.0 <= target) { acc += kTiles - j; j++; }
            bounds[s] = Math.Max(j, bounds[s - 1]);
        }
        bounds[splits] = kTiles;
        return bounds;
    }

    /// <summary>Key tiles [jt0, jt1) of kv head kvh in batch row b, against every query tile that can see them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void BackwardGroup(Scratch sc, in Grads p, int b, int kvh, int jt0, int jt1, int rep, int seqLen, int qHeads, int kvHeads, int d, int dp, float scale, int window,
        float softcap)
    {
        long row = (long)b * seqLen, kvStride = (long)kvHeads * d, qStride = (long)qHeads * d;
        float* kRow = p.K + (row * kvHeads + kvh) * d, vRow = p.V + (row * kvHeads + kvh) * d;
        int* seg = p.Seg == null ? null : p.Seg + row, lo = p.Lo == null ? null : p.Lo + row;
        for (int j0 = jt0 * Bc; j0 < Math.Min(seqLen, jt1 * Bc); j0 += Bc)
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
                if ((long)i0 - (j0 + bc - 1) >= window) break; // sliding window: this and later query tiles are past every key's reach
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
                if (softcap > 0) Softcap(sc.S, rows, softcap, sc.Cap);   // P is of the capped scores; Cap = d(capped)/d(score)
                for (int hh = 0; hh < rep; hh++) Mask(sc.S + hh * br * Bc, br, bc, j0, i0, seg, window);
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
                // soft-capping: dS (of the capped scores) times 1 − tanh² is dS of the raw scaled scores
                if (softcap > 0)
                    System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(sc.DP, rows * Bc), new ReadOnlySpan<float>(sc.Cap, rows * Bc), new Span<float>(sc.DP, rows * Bc));
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
