using PeftSharp.Compute;
using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using PeftSharp.Tensors;

namespace PeftSharp.Kernels;

/// <summary>
/// LM head fused with softmax cross-entropy, chunked over the vocabulary: (n, V) logits never exist, only
/// (active rows × chunk). Pass 1 keeps an online log-sum-exp per row; pass 2 (gradients only) recomputes each chunk's
/// logits and turns them into dlogits = gradScale · (softmax − onehot) for two GEMMs.
/// Ignored rows (target −100) are dropped before any GEMM: they cost nothing and get zero gradient.
/// With a soft cap c &gt; 0 (Gemma 2's final_logit_softcapping) each logit z becomes c·tanh(z / c) right after its GEMM,
/// and every dlogit is multiplied by 1 − tanh² = 1 − (capped / c)² before the gradient GEMMs.
/// </summary>
internal static unsafe class CrossEntropy
{
    public const int IgnoreIndex = -100;

    /// <summary>Upper bound on floats in the logits chunk buffer (8 MiB).</summary>
    const int ChunkBudget = 1 << 21;

    // Loss of the LM head fused with softmax cross-entropy, chunked over the vocabulary so (N,V) logits never exist.
    // hidden (n,c) final-normed states; lmHead (V,c) any dtype; targets (n), -100 = ignored.
    // Returns the SUM of token losses and the count of non-ignored targets. If dhidden is non-empty,
    // dhidden (n,c) += gradScale · d(sum of losses)/dhidden; if dLmHead is non-empty, dLmHead (V,c) += the same for
    // the head weight (full fine-tuning / modules_to_save).
    public static (double LossSum, int Count) ForwardBackward(ComputeContext ctx, ReadOnlySpan<float> hidden, in MatrixView lmHead, ReadOnlySpan<int> targets,
        int n, int c, float gradScale, Span<float> dhidden, Span<float> dLmHead, float softcap = 0)
        => ForwardBackward(ctx, hidden, lmHead, targets, n, c, gradScale, dhidden, dLmHead, chunk: 0, softcap);

    /// <summary>As the public overload with an explicit vocabulary chunk (0 = choose from the row count); tests use small chunks.</summary>
    internal static (double LossSum, int Count) ForwardBackward(ComputeContext ctx, ReadOnlySpan<float> hidden, in MatrixView lmHead, ReadOnlySpan<int> targets,
        int n, int c, float gradScale, Span<float> dhidden, Span<float> dLmHead, int chunk, float softcap = 0)
    {
        if (!(softcap >= 0) || float.IsInfinity(softcap)) throw new ArgumentException($"softcap must be a finite number ≥ 0 (0 = none), got {softcap}");
        float cap = softcap;
        int vocab = lmHead.Rows;
        if (lmHead.Cols != c) throw new ArgumentException($"lm_head has {lmHead.Cols} columns, hidden has {c}");
        if (hidden.Length < (long)n * c) throw new ArgumentException($"hidden holds {hidden.Length} floats, need {(long)n * c}");
        if (targets.Length < n) throw new ArgumentException($"targets holds {targets.Length} ids, need {n}");
        bool wantDh = !dhidden.IsEmpty, wantDw = !dLmHead.IsEmpty;
        if (wantDh && dhidden.Length < (long)n * c) throw new ArgumentException("dhidden shorter than n·c");
        if (wantDw && dLmHead.Length < (long)vocab * c) throw new ArgumentException("dLmHead shorter than V·c");

        int m = 0;
        for (int i = 0; i < n; i++)
        {
            int t = targets[i];
            if (t == IgnoreIndex) continue;
            if ((uint)t >= (uint)vocab)
                throw new PeftException($"target token id {t} at position {i} is outside the vocabulary (size {vocab}); use -100 to ignore a position");
            m++;
        }
        if (m == 0) return (0, 0);
        if (chunk <= 0) chunk = Math.Clamp(ChunkBudget / m / 64 * 64, 256, 8192);
        chunk = Math.Min(chunk, vocab);

        var pool = ArrayPool<float>.Shared;
        int[] rows = ArrayPool<int>.Shared.Rent(m);
        int[] tgt = ArrayPool<int>.Shared.Rent(m);
        float[] logits = pool.Rent(m * chunk);
        float[] rowMax = pool.Rent(m), tgtLogit = pool.Rent(m);
        double[] rowSum = ArrayPool<double>.Shared.Rent(m);
        bool compact = m < n;
        float[]? hBuf = compact ? pool.Rent(m * c) : null;
        float[]? dhBuf = compact && wantDh ? pool.Rent(m * c) : null;
        float[]? acc = null;
        try
        {
            for (int i = 0, r = 0; i < n; i++)
                if (targets[i] != IgnoreIndex) { rows[r] = i; tgt[r] = targets[i]; r++; }
            fixed (float* ph = hidden) fixed (float* phb = hBuf) fixed (float* pdhb = dhBuf) fixed (float* pdh = dhidden) fixed (float* pdw = dLmHead)
            fixed (float* pLog = logits) fixed (float* pMax = rowMax) fixed (float* pTl = tgtLogit) fixed (double* pSum = rowSum) fixed (int* pT = tgt)
            {
                float* h = ph;
                if (compact)
                {
                    for (int r = 0; r < m; r++) new ReadOnlySpan<float>(ph + (long)rows[r] * c, c).CopyTo(new Span<float>(phb + (long)r * c, c));
                    h = phb;
                }
                var hView = MatrixView.F32(h, m, c);
                float* lg = pLog, mx = pMax, tl = pTl; double* sum = pSum; int* tg = pT;
                for (int r = 0; r < m; r++) { mx[r] = float.NegativeInfinity; sum[r] = 0; }

                // Pass 1: running max and Σexp per row. With a frozen head (only dhidden wanted) it also accumulates
                // acc_r = Σ_v exp(l_rv − max_r)·W_v, rescaled whenever the running max grows (flash-attention style),
                // so that dhidden_r = g·(acc_r / Σ_r − W_target) needs no second pass over the vocabulary.
                bool online = wantDh && !wantDw;
                acc = online ? pool.Rent(m * c) : null;
                fixed (float* pAcc = acc)
                {
                    float* ac = pAcc;
                    if (online) new Span<float>(ac, m * c).Clear();
                    for (int v0 = 0; v0 < vocab; v0 += chunk)
                    {
                        int cv = Math.Min(chunk, vocab - v0), vStart = v0;
                        var wChunk = lmHead.SliceRows(v0, cv);
                        Gemm.Multiply(ctx, false, true, m, cv, c, 1f, hView, wChunk, 0f, lg, cv);
                        ctx.For(m, (r0, r1) =>
                        {
                            for (int r = r0; r < r1; r++)
                            {
                                var s = new Span<float>(lg + (long)r * cv, cv);
                                if (cap > 0) Softcap(s, cap);
                                int t = tg[r] - vStart;
                                if ((uint)t < (uint)cv) tl[r] = s[t];
                                float mNew = Math.Max(mx[r], TensorPrimitives.Max(s));
                                double rescale = float.IsNegativeInfinity(mx[r]) ? 0 : Math.Exp((double)mx[r] - mNew);
                                sum[r] = sum[r] * rescale + SumExpShifted(lg + (long)r * cv, cv, mNew);
                                mx[r] = mNew;
                                if (online)
                                {
                                    if (rescale != 1) TensorPrimitives.Multiply(new Span<float>(ac + (long)r * c, c), (float)rescale, new Span<float>(ac + (long)r * c, c));
                                    if (cap > 0) ScaledExpShiftedCapped(lg + (long)r * cv, cv, mNew, 1f, cap);
                                    else ScaledExpShifted(lg + (long)r * cv, cv, mNew, 1f);
                                }
                            }
                        }, minPerThread: 8);
                        // acc (m,c) += exp(logits − max) (m,cv) · W_chunk (cv,c)
                        if (online) Gemm.Multiply(ctx, false, false, m, c, cv, 1f, MatrixView.F32(lg, m, cv), wChunk, 1f, ac, c);
                    }
                }
                double loss = 0;
                for (int r = 0; r < m; r++)
                {
                    double lse = mx[r] + Math.Log(sum[r]);
                    loss += lse - tl[r];
                    mx[r] = (float)lse; // mx now holds lse for pass 2
                }

                if (wantDh && !wantDw)
                {
                    // The head is frozen (LoRA, QLoRA): dhidden was accumulated during pass 1, so no second pass.
                    FinishHiddenGradient(acc!, lmHead, tg, sum, gradScale, m, c, compact ? pdhb : pdh, compact, tl, cap);
                    if (compact) ScatterAddRows(pdh, pdhb, rows, m, c);
                }
                else if (wantDh || wantDw)
                {
                    float* dh = null;
                    if (wantDh)
                    {
                        dh = compact ? pdhb : pdh;
                        if (compact) new Span<float>(pdhb, m * c).Clear();
                    }
                    float g = gradScale;
                    for (int v0 = 0; v0 < vocab; v0 += chunk)
                    {
                        int cv = Math.Min(chunk, vocab - v0), vStart = v0;
                        var wChunk = lmHead.SliceRows(v0, cv);
                        Gemm.Multiply(ctx, false, true, m, cv, c, 1f, hView, wChunk, 0f, lg, cv);
                        // dlogits (m, cv) = g · (softmax − onehot)
                        ctx.For(m, (r0, r1) =>
                        {
                            for (int r = r0; r < r1; r++)
                            {
                                var s = new Span<float>(lg + (long)r * cv, cv);
                                int t = tg[r] - vStart;
                                if (cap > 0)
                                {
                                    Softcap(s, cap);
                                    ScaledExpShiftedCapped(lg + (long)r * cv, cv, mx[r], g, cap);
                                    if ((uint)t < (uint)cv) s[t] -= g * CapDerivative(tl[r], cap);
                                }
                                else
                                {
                                    ScaledExpShifted(lg + (long)r * cv, cv, mx[r], g);
                                    if ((uint)t < (uint)cv) s[t] -= g;
                                }
                            }
                        }, minPerThread: 8);
                        var dl = MatrixView.F32(lg, m, cv);
                        // dhidden (m,c) += dlogits (m,cv) · W_chunk (cv,c)
                        if (dh != null) Gemm.Multiply(ctx, false, false, m, c, cv, 1f, dl, wChunk, 1f, dh, c);
                        // dLmHead_chunk (cv,c) += dlogitsᵀ (cv,m) · hidden (m,c)
                        if (wantDw) Gemm.Multiply(ctx, true, false, cv, c, m, 1f, dl, hView, 1f, pdw + (long)v0 * c, c);
                    }
                    if (wantDh && compact) ScatterAddRows(pdh, pdhb, rows, m, c);
                }
                return (loss, m);
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(rows); ArrayPool<int>.Shared.Return(tgt);
            pool.Return(logits); pool.Return(rowMax); pool.Return(tgtLogit);
            ArrayPool<double>.Shared.Return(rowSum);
            if (hBuf != null) pool.Return(hBuf);
            if (dhBuf != null) pool.Return(dhBuf);
            if (acc != null) pool.Return(acc);
        }
    }

    /// <summary>dhidden[rows[r]] += compact[r] for the m scored rows.</summary>
    static void ScatterAddRows(float* dhidden, float* compact, int[] rows, int m, int c)
    {
        for (int r = 0; r < m; r++)
        {
            var dst = new Span<float>(dhidden + (long)rows[r] * c, c);
            TensorPrimitives.Add(dst, new ReadOnlySpan<float>(compact + (long)r * c, c), dst);
        }
    }

    /// <summary>dhidden_r (+)= g · (acc_r / Σ_r − W[target_r]); compact rows are scattered back by the caller's path.</summary>
    static void FinishHiddenGradient(float[] acc, in MatrixView lmHead, int* tg, double* sum, float g, int m, int c, float* dh, bool compactBuffer,
        float* targetLogit, float cap)
    {
        var row = new float[c];
        var head = lmHead;
        fixed (float* a = acc)
        {
            for (int r = 0; r < m; r++)
            {
                DTypeConvert.ToFloat(head.Data + (long)tg[r] * head.Stride * head.DType.Size(), head.DType, row);
                var dst = new Span<float>(dh + (long)r * c, c);
                var ar = new ReadOnlySpan<float>(a + (long)r * c, c);
                float inv = (float)(1.0 / sum[r]);
                float gt = cap > 0 ? g * CapDerivative(targetLogit[r], cap) : g;   // the target's dlogit −g, through the cap
                if (compactBuffer)
                {
                    // dst is a fresh compact buffer: write, the scatter below adds it into dhidden.
                    TensorPrimitives.Multiply(ar, g * inv, dst);
                    TensorPrimitives.MultiplyAdd(row, -gt, dst, dst);
                }
                else
                {
                    TensorPrimitives.MultiplyAdd(ar, g * inv, dst, dst);
                    TensorPrimitives.MultiplyAdd(row, -gt, dst, dst);
                }
            }
        }
    }

    /// <summary>x = cap·tanh(x / cap) in place.</summary>
    static void Softcap(Span<float> x, float cap)
    {
        TensorPrimitives.Multiply(x, 1f / cap, x);
        TensorPrimitives.Tanh(x, x);
        TensorPrimitives.Multiply(x, cap, x);
    }

    /// <summary>d(cap·tanh(z / cap))/dz = 1 − tanh² at a capped value y = cap·tanh(z / cap).</summary>
    static float CapDerivative(float capped, float cap)
    {
        float t = capped / cap;
        return 1 - t * t;
    }

    /// <summary>x[j] = scale · exp(x[j] − shift) · (1 − (x[j] / cap)²), in place: the dlogit of a capped logit x[j].</summary>
    static void ScaledExpShiftedCapped(float* x, int len, float shift, float scale, float cap)
    {
        float inv = 1f / cap;
        for (int j = 0; j < len; j++)
        {
            float t = x[j] * inv;
            x[j] = scale * MathF.Exp(x[j] - shift) * (1 - t * t);
        }
    }

    /// <summary>Σ_j exp(x[j] − shift) over x (len), x unchanged.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static double SumExpShifted(float* x, int len, float shift)
    {
        var vs = Vector256.Create(shift);
        var acc = Vector256<float>.Zero;
        int j = 0;
        for (; j + 8 <= len; j += 8) acc += Vector256.Exp(Vector256.Load(x + j) - vs);
        double sum = Vector256.Sum(acc);
        for (; j < len; j++) sum += MathF.Exp(x[j] - shift);
        return sum;
    }

    /// <summary>x[j] = scale · exp(x[j] − shift), in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ScaledExpShifted(float* x, int len, float shift, float scale)
    {
        var vs = Vector256.Create(shift); var vg = Vector256.Create(scale);
        int j = 0;
        for (; j + 8 <= len; j += 8) Vector256.Store(Vector256.Exp(Vector256.Load(x + j) - vs) * vg, x + j);
        for (; j < len; j++) x[j] = scale * MathF.Exp(x[j] - shift);
    }
}
