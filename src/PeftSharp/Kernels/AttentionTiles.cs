using PeftSharp.Compute;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace PeftSharp.Kernels;

/// <summary>Tile scratch and micro-kernels shared by the attention forward and backward passes.</summary>
static unsafe class AttentionTiles
{
    /// <summary>Query rows per tile (Br) and key columns per tile (Bc); the micro-kernels assume Bc = 64.</summary>
    public const int Br = 64, Bc = 64;

    /// <summary>
    /// Per-task tile buffers, padded head dim Dp (multiple of 8). Query-side tiles hold Rows = (heads sharing a kv
    /// head) × Br rows, so one gathered key/value tile serves the whole GQA group. Rented from the context's pool.
    /// </summary>
    public sealed class Scratch : IDisposable
    {
        /// <summary>Tile buffers for one task, rented from the context's pool (returned on dispose).</summary>
        public static Scratch Rent(ComputeContext ctx, int dp, int rows) => new(ctx.Buffers, dp, rows);

        BufferPool.Lease _lease;
        public readonly int Dp, Rows;
        // query side (Rows, ·): Q, O (= DQ in the backward), DO, S, DP, M, L, Di, Lse; key side (Bc, ·): KT, V, KRows, VT, DK, DV
        public readonly float* Q, O, DQ, DO, S, DP, M, L, Di, Lse, KT, V, KRows, VT, DK, DV;
        /// <summary>(Rows, Bc): 1 − tanh² of the soft-capped scores, the backward's chain factor (soft-capping only).</summary>
        public readonly float* Cap;

        Scratch(BufferPool pool, int dp, int rows)
        {
            Dp = dp; Rows = rows;
            int qTile = rows * dp, kTile = Bc * dp, scores = rows * Bc;
            long total = 3L * qTile + 6L * kTile + 3L * scores + 4L * rows + 16;
            _lease = pool.Rent(total);
            float* p = _lease.Pointer;   // 64-byte aligned
            Q = p; p += qTile; O = p; p += qTile; DO = p; p += qTile;
            KT = p; p += kTile; V = p; p += kTile; KRows = p; p += kTile; VT = p; p += kTile; DK = p; p += kTile; DV = p; p += kTile;
            S = p; p += scores; DP = p; p += scores; Cap = p; p += scores;
            M = p; p += rows; L = p; p += rows; Di = p; p += rows; Lse = p;
            DQ = O; // the backward never uses O, the forward never uses DQ
        }

        public void Dispose() => _lease.Dispose();
    }

    /// <summary>One (batch row, kv head) of the attention problem: Q/O point at the group's first query head, K/V at the kv head.</summary>
    public struct Head
    {
        public float* Q, K, V, O, Lse;      // Lse may be null (cached decoding)
        public long QStride, KvStride;      // floats between consecutive tokens (O and dO share QStride)
        public int LseStride;
        public int* Seg, Lo;                // per-position segment id and first position of that id; null without packing
        public int PosOffset;               // absolute position of query index 0 (KV-cache start), 0 for training
        public int Window;                  // sliding window: query p sees keys p−Window+1 … p; int.MaxValue = unlimited
        public int D, Dp, Rep;              // Rep query heads (adjacent, D apart) share this kv head
        public float Scale;
        public float Softcap;               // > 0: scores s become Softcap·tanh(s / Softcap) before the mask; 0 = none
    }

    /// <summary>dst (rows, dp) = scale · src rows (stride srcStride) of length d, zero-padded to dp.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GatherRows(float* dst, int dp, float* src, long srcStride, int rows, int d, float scale)
    {
        for (int r = 0; r < rows; r++)
        {
            float* s = src + r * srcStride, o = dst + (long)r * dp;
            int i = 0;
            var vs = Vector256.Create(scale);
            for (; i + 8 <= d; i += 8) Vector256.Store(Vector256.Load(s + i) * vs, o + i);
            for (; i < d; i++) o[i] = s[i] * scale;
            for (; i < dp; i++) o[i] = 0;
        }
    }

    /// <summary>dstT (dp, Bc): column j = src row j (j &lt; rows), zero elsewhere.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GatherTransposed(float* dstT, int dp, float* src, long srcStride, int rows, int d)
    {
        if (rows < Bc || d < dp) new Span<float>(dstT, dp * Bc).Clear();
        for (int j = 0; j < rows; j++)
        {
            float* s = src + j * srcStride;
            for (int i = 0; i < d; i++) dstT[i * Bc + j] = s[i];
        }
    }

    /// <summary>s (rows, Bc) = a (rows, dp) · bT (dp, Bc): one row at a time, 64 columns in 8 registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scores(float* s, float* a, int rows, float* bT, int dp)
    {
        for (int i = 0; i < rows; i++)
        {
            float* ai = a + (long)i * dp;
            Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
            for (int d = 0; d < dp; d++)
            {
                var x = Vector256.Create(ai[d]);
                float* b = bT + d * Bc;
                c0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b), c0);
                c1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 8), c1);
                c2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 16), c2);
                c3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 24), c3);
                c4 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 32), c4);
                c5 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 40), c5);
                c6 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 48), c6);
                c7 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 56), c7);
            }
            float* si = s + i * Bc;
            Vector256.Store(c0, si); Vector256.Store(c1, si + 8); Vector256.Store(c2, si + 16); Vector256.Store(c3, si + 24);
            Vector256.Store(c4, si + 32); Vector256.Store(c5, si + 40); Vector256.Store(c6, si + 48); Vector256.Store(c7, si + 56);
        }
    }

    /// <summary>o (dp) = outScale · o + Σ_t coef[t·stride] · rows[t, :], rows (count, dp). outScale 0 ignores o's old value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AccumulateRows(float* o, float outScale, float* coef, int stride, float* rows, int count, int dp)
    {
        int d0 = 0;
        var vScale = Vector256.Create(outScale);
        for (; d0 + 64 <= dp; d0 += 64)
        {
            float* od = o + d0;
            Vector256<float> a0, a1, a2, a3, a4, a5, a6, a7;
            if (outScale == 0) { a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = Vector256<float>.Zero; }
            else
            {
                a0 = Vector256.Load(od) * vScale; a1 = Vector256.Load(od + 8) * vScale; a2 = Vector256.Load(od + 16) * vScale; a3 = Vector256.Load(od + 24) * vScale;
                a4 = Vector256.Load(od + 32) * vScale; a5 = Vector256.Load(od + 40) * vScale; a6 = Vector256.Load(od + 48) * vScale; a7 = Vector256.Load(od + 56) * vScale;
            }
            for (int t = 0; t < count; t++)
            {
                float c = coef[t * stride];
                if (c == 0) continue; // masked entries
                var x = Vector256.Create(c);
                float* r = rows + (long)t * dp + d0;
                a0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(r), a0);
                a1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(r + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(r + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(r + 24), a3);
                a4 = Vector256.FusedMultiplyAdd(x, Vector256.Load(r + 32), a4);
                a5 = Vector256.FusedMultiplyAdd(x, Vector256.Load(r + 40), a5);
                a6 = Vector256.FusedMultiplyAdd(x, Vector256.Load(r + 48), a6);
                a7 = Vector256.FusedMultiplyAdd(x, Vector256.Load(r + 56), a7);
            }
            Vector256.Store(a0, od); Vector256.Store(a1, od + 8); Vector256.Store(a2, od + 16); Vector256.Store(a3, od + 24);
            Vector256.Store(a4, od + 32); Vector256.Store(a5, od + 40); Vector256.Store(a6, od + 48); Vector256.Store(a7, od + 56);
        }
        for (; d0 < dp; d0 += 8)
        {
            var a = outScale == 0 ? Vector256<float>.Zero : Vector256.Load(o + d0) * vScale;
            for (int t = 0; t < count; t++)
            {
                float c = coef[t * stride];
                if (c != 0) a = Vector256.FusedMultiplyAdd(Vector256.Create(c), Vector256.Load(rows + (long)t * dp + d0), a);
            }
            Vector256.Store(a, o + d0);
        }
    }

    /// <summary>Soft-capping of rows × Bc scores in place (Gemma 2, transformers' eager attention: s = cap·tanh(s / cap),
    /// applied to the scaled scores before the mask); <paramref name="derivative"/>, when not null, receives
    /// d(capped)/d(s) = 1 − tanh².</summary>
    public static void Softcap(float* s, int rows, float cap, float* derivative)
    {
        var span = new Span<float>(s, rows * Bc);
        System.Numerics.Tensors.TensorPrimitives.Multiply(span, 1f / cap, span);
        System.Numerics.Tensors.TensorPrimitives.Tanh(span, span);
        if (derivative != null)
        {
            var d = new Span<float>(derivative, rows * Bc);
            System.Numerics.Tensors.TensorPrimitives.Multiply(span, span, d);
            System.Numerics.Tensors.TensorPrimitives.Subtract(1f, d, d);
        }
        System.Numerics.Tensors.TensorPrimitives.Multiply(span, cap, span);
    }

    /// <summary>Largest of the Bc scores in a row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float RowMax(float* s)
    {
        var m = Vector256.Max(Vector256.Max(Vector256.Max(Vector256.Load(s), Vector256.Load(s + 8)), Vector256.Max(Vector256.Load(s + 16), Vector256.Load(s + 24))),
                              Vector256.Max(Vector256.Max(Vector256.Load(s + 32), Vector256.Load(s + 40)), Vector256.Max(Vector256.Load(s + 48), Vector256.Load(s + 56))));
        float r = m.GetElement(0);
        for (int i = 1; i < 8; i++) r = Math.Max(r, m.GetElement(i));
        return r;
    }

    /// <summary>s[j] = exp(s[j] − shift) over the Bc columns (−∞ → 0); returns Σ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float ExpShifted(float* s, float shift)
    {
        var vm = Vector256.Create(shift);
        var sum = Vector256<float>.Zero;
        for (int j = 0; j < Bc; j += 8)
        {
            var e = Vector256.Exp(Vector256.Load(s + j) - vm);
            Vector256.Store(e, s + j);
            sum += e;
        }
        return Vector256.Sum(sum);
    }

    /// <summary>Sets s[r, j] = −∞ where key j0+j may not be seen by query p0+r: padding (j ≥ bc), the future, another
    /// segment, or (sliding window) a key window or more positions back: visible iff 0 ≤ p − j &lt; window, the rule of
    /// transformers' masking_utils (causal_mask_function and sliding_window_overlay: kv_idx &gt; q_idx − sliding_window).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Mask(float* s, int br, int bc, int j0, int p0, int* seg, int window = int.MaxValue)
    {
        // Nothing to mask when every key precedes every query and lies within every query's window, no padding, no packing.
        if (j0 + Bc - 1 <= p0 && seg == null && (long)p0 + br - 1 - j0 < window) return;
        for (int r = 0; r < br; r++)
        {
            int p = p0 + r;
            float* sr = s + r * Bc;
            int visibleEnd = Math.Min(bc, p - j0 + 1); // keys j0 … p are causal-visible
            if (visibleEnd < 0) visibleEnd = 0;
            int visibleStart = (int)Math.Clamp((long)p - window + 1 - j0, 0, visibleEnd); // keys before p − window + 1 are out of the window
            for (int j = 0; j < visibleStart; j++) sr[j] = float.NegativeInfinity;
            for (int j = visibleEnd; j < Bc; j++) sr[j] = float.NegativeInfinity;
            if (seg != null)
            {
                int sp = seg[p];
                for (int j = visibleStart; j < visibleEnd; j++)
                    if (seg[j0 + j] != sp) sr[j] = float.NegativeInfinity;
            }
        }
    }

    /// <summary>The window as the kernels use it: 0 or negative (none) → int.MaxValue.</summary>
    public static int WindowOrUnlimited(int window) => window <= 0 ? int.MaxValue : window;

    /// <summary>Smallest lo over query rows [i0, i0+br): no key before it is visible to the tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int MinLo(int* lo, int i0, int br)
    {
        if (lo == null) return 0;
        int m = int.MaxValue;
        for (int r = 0; r < br; r++) m = Math.Min(m, lo[i0 + r]);
        return m;
    }

    /// <summary>lo (N): for each token, the first position in its batch row with the same segment id (≤ its own).</summary>
    public static void FirstPositionOfSegment(Span<int> lo, ReadOnlySpan<int> seg, int batch, int seqLen)
    {
        for (int b = 0; b < batch; b++)
        {
            int o = b * seqLen;
            for (int t = 0; t < seqLen; t++)
            {
                int id = seg[o + t];
                if (t > 0 && seg[o + t - 1] == id) { lo[o + t] = lo[o + t - 1]; continue; }
                // A new run: its id may have appeared earlier in the row (non-contiguous ids). Runs are few, so a scan is cheap.
                int f = 0;
                while (seg[o + f] != id) f++;
                lo[o + t] = f;
            }
        }
    }
}
