using PeftSharp.Compute;
using System.Runtime.CompilerServices;
using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace PeftSharp.Kernels;

/// <summary>
/// HF Llama RMSNorm in float32: y = w · x · rsqrt(mean(x²) + eps). Also Qwen3's per-head q/k norm (n = N·heads, c = head_dim).
/// With weightOffset 1 it is Gemma's RMSNorm, y = (1 + w) · x · rsqrt(mean(x²) + eps), the 1 + w added in float32 as
/// Gemma2RMSNorm / Gemma3RMSNorm do; the gradient is still taken with respect to the stored w.
/// </summary>
internal static unsafe class RmsNorm
{
    // output (n,c) = input · rstd · weight; rstd (n) = 1/sqrt(mean(input²) + eps) is saved for Backward.
    public static void Forward(ComputeContext ctx, Span<float> output, Span<float> rstd, ReadOnlySpan<float> input, ReadOnlySpan<float> weight, int n, int c, float eps,
        float weightOffset = 0)
    {
        Check(input.Length, n, c, "input"); Check(output.Length, n, c, "output");
        if (rstd.Length < n) throw new ArgumentException("rstd shorter than n");
        if (weight.Length < c) throw new ArgumentException("weight shorter than c");
        fixed (float* po = output) fixed (float* pr = rstd) fixed (float* px = input) fixed (float* pw = weight)
        {
            float* o = po, r = pr, x = px, w = pw;
            float off = weightOffset;
            ctx.For(n, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (i0, i1) =>
            {
                for (int i = i0; i < i1; i++)
                {
                    float* xi = x + (long)i * c, oi = o + (long)i * c;
                    var acc = Vector256<float>.Zero;
                    int j = 0;
                    for (; j + 8 <= c; j += 8) { var v = Vector256.Load(xi + j); acc = Vector256.FusedMultiplyAdd(v, v, acc); }
                    float ss = Vector256.Sum(acc);
                    for (; j < c; j++) ss += xi[j] * xi[j];
                    float ri = 1f / MathF.Sqrt(ss / c + eps);
                    r[i] = ri;
                    var vr = Vector256.Create(ri); var voff = Vector256.Create(off);
                    for (j = 0; j + 8 <= c; j += 8) Vector256.Store(Vector256.Load(xi + j) * vr * (Vector256.Load(w + j) + voff), oi + j);
                    for (; j < c; j++) oi[j] = xi[j] * ri * (w[j] + off);
                }
            }, minPerThread: Math.Max(1, 16384 / Math.Max(1, c)));
        }
    }

    // y_j = w_j x_j r, r = (mean(x²)+eps)^(-1/2), ∂r/∂x_k = −r³ x_k / c, so
    // dinput_k += r · w_k · dy_k − x_k · r³/c · Σ_j dy_j w_j x_j;   dweight_j += Σ_rows dy_j x_j r.
    // dinput (n,c) +=, dweight (c) += (empty when frozen).
    // With weightOffset, w above is (w + offset); dweight is unchanged (d(w + offset)/dw = 1).
    public static void Backward(ComputeContext ctx, Span<float> dinput, Span<float> dweight, ReadOnlySpan<float> doutput, ReadOnlySpan<float> input, ReadOnlySpan<float> weight, ReadOnlySpan<float> rstd, int n, int c,
        float weightOffset = 0)
    {
        Check(input.Length, n, c, "input"); Check(doutput.Length, n, c, "doutput");
        bool wantDx = !dinput.IsEmpty, wantDw = !dweight.IsEmpty;
        if (wantDx) Check(dinput.Length, n, c, "dinput");
        if (!wantDx && !wantDw) return;
        // dweight: each part sums its own row range into a private partial, then partials are added in part order.
        int parts = Math.Min(ctx.Threads, Math.Max(1, (int)((long)n * c / 16384)));
        parts = Math.Max(1, Math.Min(parts, n));
        float[]? partial = wantDw ? ArrayPool<float>.Shared.Rent(parts * c) : null;
        try
        {
            fixed (float* pdx = dinput) fixed (float* pdw = dweight) fixed (float* pdy = doutput) fixed (float* px = input)
            fixed (float* pw = weight) fixed (float* pr = rstd) fixed (float* ppart = partial)
            {
                float* dx = pdx, dy = pdy, x = px, w = pw, r = pr, part = ppart;
                float off = weightOffset;
                if (part != null) new Span<float>(part, parts * c).Clear();
                ctx.For(parts, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (p0, p1) =>
                {
                    for (int p = p0; p < p1; p++)
                    {
                        int i0 = (int)((long)n * p / parts), i1 = (int)((long)n * (p + 1) / parts);
                        for (int i = i0; i < i1; i++)
                        {
                            float* xi = x + (long)i * c, dyi = dy + (long)i * c;
                            float ri = r[i];
                            if (wantDx)
                            {
                                // Σ_j dy_j w_j x_j
                                float dot = DotOfThree(dyi, w, xi, c, off);
                                float coef = ri * ri * ri * dot / c;
                                float* dxi = dx + (long)i * c;
                                int j = 0;
                                var vr = Vector256.Create(ri); var vcoef = Vector256.Create(coef); var voff = Vector256.Create(off);
                                for (; j + 8 <= c; j += 8)
                                {
                                    var t = Vector256.Load(dyi + j) * (Vector256.Load(w + j) + voff) * vr - Vector256.Load(xi + j) * vcoef;
                                    Vector256.Store(Vector256.Load(dxi + j) + t, dxi + j);
                                }
                                for (; j < c; j++) dxi[j] += dyi[j] * (w[j] + off) * ri - xi[j] * coef;
                            }
                            if (part != null)
                            {
                                float* pp = part + (long)p * c;
                                int j = 0;
                                var vr = Vector256.Create(ri);
                                for (; j + 8 <= c; j += 8)
                                    Vector256.Store(Vector256.FusedMultiplyAdd(Vector256.Load(dyi + j) * vr, Vector256.Load(xi + j), Vector256.Load(pp + j)), pp + j);
                                for (; j < c; j++) pp[j] += dyi[j] * ri * xi[j];
                            }
                        }
                    }
                });
                if (part != null)
                {
                    var dwSpan = new Span<float>(pdw, c);
                    for (int p = 0; p < parts; p++) TensorPrimitives.Add(dwSpan, new ReadOnlySpan<float>(part + (long)p * c, c), dwSpan);
                }
            }
        }
        finally
        {
            if (partial != null) ArrayPool<float>.Shared.Return(partial);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float DotOfThree(float* a, float* b, float* x, int c, float bOffset)
    {
        var acc = Vector256<float>.Zero;
        var vo = Vector256.Create(bOffset);
        int j = 0;
        for (; j + 8 <= c; j += 8)
            acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + j) * (Vector256.Load(b + j) + vo), Vector256.Load(x + j), acc);
        float s = Vector256.Sum(acc);
        for (; j < c; j++) s += a[j] * (b[j] + bOffset) * x[j];
        return s;
    }

    static void Check(int length, int n, int c, string what)
    {
        if (length < (long)n * c) throw new ArgumentException($"{what} holds {length} floats, need {(long)n * c}");
    }
}
