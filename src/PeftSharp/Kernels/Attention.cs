using PeftSharp.Compute;
using System.Runtime.CompilerServices;
using System.Buffers;
using System.Numerics.Tensors;
using static PeftSharp.Kernels.AttentionTiles;

namespace PeftSharp.Kernels;

/// <summary>
/// Causal grouped-query attention, FlashAttention-2 style: 64×64 tiles of scores with an online softmax, so no T×T
/// matrix is ever formed. lse (N, Hq) holds the natural-log log-sum-exp of the SCALED scores (q·k/√D) per query and
/// head, index token·Hq + head; Backward recomputes the probabilities from it.
/// </summary>
internal static unsafe partial class Attention
{
    // Causal grouped-query attention over `batch` rows of `seqLen` tokens, computed in tiles with an online softmax
    // (no T×T matrix). q (N,Hq,D); k,v (N,Hkv,D); segmentIds (N) or empty: with packing, token i attends j only if
    // j ≤ i in the same row AND segmentIds[i] == segmentIds[j]. output (N,Hq,D); lse (N,Hq) log-sum-exp saved for
    // Backward. Scale 1/sqrt(D). Query head h uses kv head h / (Hq/Hkv). window > 0: sliding window, token i also needs
    // i − j < window (index within the row, so packed segments keep their own windows); 0 = unlimited. softcap > 0:
    // the scaled scores s become softcap·tanh(s / softcap) before masking (Gemma 2); lse is then of the capped scores.
    public static void Forward(ComputeContext ctx, Span<float> output, Span<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<int> segmentIds, int batch, int seqLen, int qHeads, int kvHeads, int headDim, int window = 0, float softcap = 0)
    {
        CheckWindow(window);
        CheckSoftcap(softcap);
        int n = batch * seqLen;
        CheckShapes(q, k, v, segmentIds, n, qHeads, kvHeads, headDim);
        Need(output.Length, (long)n * qHeads * headDim, "output");
        Need(lse.Length, (long)n * qHeads, "lse");
        if (n == 0) return;
        int rep = qHeads / kvHeads, dp = (headDim + 7) & ~7, tiles = (seqLen + Br - 1) / Br;
        float scale = 1f / MathF.Sqrt(headDim);
        int w = WindowOrUnlimited(window);
        bool packed = !segmentIds.IsEmpty;
        int[]? loArr = packed ? ArrayPool<int>.Shared.Rent(n) : null;
        try
        {
            if (packed) FirstPositionOfSegment(loArr, segmentIds, batch, seqLen);
            fixed (float* po = output) fixed (float* pl = lse) fixed (float* pq = q) fixed (float* pk = k) fixed (float* pv = v)
            fixed (int* ps = segmentIds) fixed (int* plo = loArr)
            {
                float* o = po, l = pl, qq = pq, kk = pk, vv = pv; int* seg = ps, lo = plo;
                ctx.For(batch * kvHeads * tiles, (t0, t1) =>
                {
                    using var sc = Scratch.Rent(ctx, dp, rep * Br);
                    for (int t = t0; t < t1; t++)
                    {
                        int tile = t % tiles, bg = t / tiles, kvh = bg % kvHeads, b = bg / kvHeads;
                        var g = RowGroup(qq, kk, vv, o, l, seg, lo, b, kvh, rep, seqLen, qHeads, kvHeads, headDim, dp, scale, w);
                        g.Softcap = softcap;
                        int i0 = tile * Br;
                        ForwardTile(sc, g, i0, Math.Min(Br, seqLen - i0));
                    }
                });
            }
        }
        finally
        {
            if (loArr != null) ArrayPool<int>.Shared.Return(loArr);
        }
    }

    // Incremental decoding for ONE sequence: q (tNew,Hq,D) are the queries at positions start … start+tNew−1;
    // kCache, vCache (≥ start+tNew, Hkv, D) already hold keys/values for positions 0 … start+tNew−1. Causal.
    // output (tNew,Hq,D). window > 0: query p sees only keys p−window+1 … p (the cache may hold more; they are skipped).
    public static void ForwardCached(ComputeContext ctx, Span<float> output, ReadOnlySpan<float> q, ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache,
        int start, int tNew, int qHeads, int kvHeads, int headDim, int window = 0, float softcap = 0)
    {
        CheckWindow(window);
        CheckSoftcap(softcap);
        int w = WindowOrUnlimited(window);
        if (start < 0 || tNew < 0) throw new ArgumentException("start and tNew must be ≥ 0");
        if (qHeads <= 0 || kvHeads <= 0 || qHeads % kvHeads != 0) throw new ArgumentException($"qHeads {qHeads} must be a positive multiple of kvHeads {kvHeads}");
        Need(q.Length, (long)tNew * qHeads * headDim, "q");
        Need(output.Length, (long)tNew * qHeads * headDim, "output");
        Need(kCache.Length, (long)(start + tNew) * kvHeads * headDim, "kCache");
        Need(vCache.Length, (long)(start + tNew) * kvHeads * headDim, "vCache");
        if (tNew == 0) return;
        int rep = qHeads / kvHeads, dp = (headDim + 7) & ~7, tiles = (tNew + Br - 1) / Br;
        float scale = 1f / MathF.Sqrt(headDim);
        fixed (float* po = output) fixed (float* pq = q) fixed (float* pk = kCache) fixed (float* pv = vCache)
        {
            float* o = po, qq = pq, kk = pk, vv = pv;
            ctx.For(kvHeads * tiles, (t0, t1) =>
            {
                using var sc = Scratch.Rent(ctx, dp, rep * Br);
                for (int t = t0; t < t1; t++)
                {
                    int tile = t % tiles, kvh = t / tiles;
                    var g = new Head
                    {
                        Q = qq + (long)kvh * rep * headDim, O = o + (long)kvh * rep * headDim, QStride = (long)qHeads * headDim,
                        K = kk + (long)kvh * headDim, V = vv + (long)kvh * headDim, KvStride = (long)kvHeads * headDim,
                        Lse = null, PosOffset = start, Window = w, D = headDim, Dp = dp, Rep = rep, Scale = scale, Softcap = softcap,
                    };
                    int i0 = tile * Br;
                    ForwardTile(sc, g, i0, Math.Min(Br, tNew - i0));
                }
            });
        }
    }

    /// <summary>
    /// Queries i0 … i0+br−1 of the Rep heads sharing one kv head, stacked as Rep·br rows (row hh·br + r = head hh,
    /// query i0 + r): online softmax over the visible key tiles, then o = acc / l.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ForwardTile(Scratch sc, in Head g, int i0, int br)
    {
        int d = g.D, dp = g.Dp, rows = g.Rep * br;
        int p0 = g.PosOffset + i0, pLast = p0 + br - 1;
        for (int hh = 0; hh < g.Rep; hh++)
            GatherRows(sc.Q + hh * br * dp, dp, g.Q + hh * d + i0 * g.QStride, g.QStride, br, d, g.Scale);
        new Span<float>(sc.O, rows * dp).Clear();
        for (int r = 0; r < rows; r++) { sc.M[r] = float.NegativeInfinity; sc.L[r] = 0; }
        int kLo = MinLo(g.Lo, p0, br); // packed: keys before every query's segment start are invisible
        if (g.Window != int.MaxValue) kLo = Math.Max(kLo, p0 - g.Window + 1); // nor those before the first query's window
        for (int j0 = kLo / Bc * Bc; j0 <= pLast; j0 += Bc)
        {
            int bc = Math.Min(Bc, pLast + 1 - j0);
            GatherTransposed(sc.KT, dp, g.K + j0 * g.KvStride, g.KvStride, bc, d);
            GatherRows(sc.V, dp, g.V + j0 * g.KvStride, g.KvStride, bc, d, 1f);
            Scores(sc.S, sc.Q, rows, sc.KT, dp);
            if (g.Softcap > 0) Softcap(sc.S, rows, g.Softcap, null);
            for (int hh = 0; hh < g.Rep; hh++) Mask(sc.S + hh * br * Bc, br, bc, j0, p0, g.Seg, g.Window);
            for (int r = 0; r < rows; r++)
            {
                float* sr = sc.S + r * Bc;
                float mx = RowMax(sr);
                if (float.IsNegativeInfinity(mx)) continue; // nothing visible to this query in this tile
                float mOld = sc.M[r], mNew = Math.Max(mOld, mx);
                float alpha = MathF.Exp(mOld - mNew);
                sc.L[r] = sc.L[r] * alpha + ExpShifted(sr, mNew);
                sc.M[r] = mNew;
                AccumulateRows(sc.O + r * dp, alpha, sr, 1, sc.V, bc, dp);
            }
        }
        for (int hh = 0; hh < g.Rep; hh++)
            for (int r = 0; r < br; r++)
            {
                int rr = hh * br + r;
                // Every query sees at least itself, so L > 0.
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(sc.O + rr * dp, d), 1f / sc.L[rr], new Span<float>(g.O + hh * d + (i0 + r) * g.QStride, d));
                if (g.Lse != null) g.Lse[(long)(i0 + r) * g.LseStride + hh] = sc.M[rr] + MathF.Log(sc.L[rr]);
            }
    }

    static Head RowGroup(float* q, float* k, float* v, float* o, float* lse, int* seg, int* lo, int b, int kvh, int rep,
        int seqLen, int qHeads, int kvHeads, int headDim, int dp, float scale, int window)
    {
        long row = (long)b * seqLen;
        int h0 = kvh * rep;
        return new Head
        {
            Q = q + (row * qHeads + h0) * headDim, O = o + (row * qHeads + h0) * headDim, QStride = (long)qHeads * headDim,
            K = k + (row * kvHeads + kvh) * headDim, V = v + (row * kvHeads + kvh) * headDim, KvStride = (long)kvHeads * headDim,
            Lse = lse + row * qHeads + h0, LseStride = qHeads,
            Seg = seg == null ? null : seg + row, Lo = lo == null ? null : lo + row,
            PosOffset = 0, Window = window, D = headDim, Dp = dp, Rep = rep, Scale = scale,
        };
    }

    static void CheckShapes(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<int> seg,
        int n, int qHeads, int kvHeads, int headDim)
    {
        if (qHeads <= 0 || kvHeads <= 0 || qHeads % kvHeads != 0) throw new ArgumentException($"qHeads {qHeads} must be a positive multiple of kvHeads {kvHeads}");
        if (headDim <= 0) throw new ArgumentException("headDim must be positive");
        Need(q.Length, (long)n * qHeads * headDim, "q");
        Need(k.Length, (long)n * kvHeads * headDim, "k");
        Need(v.Length, (long)n * kvHeads * headDim, "v");
        if (!seg.IsEmpty) Need(seg.Length, n, "segmentIds");
    }

    static void CheckSoftcap(float softcap)
    {
        if (!(softcap >= 0) || float.IsInfinity(softcap)) throw new ArgumentException($"softcap must be a finite number ≥ 0 (0 = none), got {softcap}");
    }

    static void CheckWindow(int window)
    {
        if (window < 0) throw new ArgumentException($"window must be ≥ 0 (0 = unlimited), got {window}");
    }

    static void Need(long have, long need, string what)
    {
        if (have < need) throw new ArgumentException($"{what} holds {have} elements, need {need}");
    }
}
