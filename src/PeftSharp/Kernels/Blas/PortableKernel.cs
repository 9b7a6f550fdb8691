using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace PeftSharp.Kernels.Blas;

/// <summary>
/// Portable strategy for CPUs without AVX2/FMA (or non-x86): a 4×8 register tile of Vector128 (8 accumulators,
/// fits 16 xmm / 32 NEON registers). MultiplyAddEstimate fuses where the hardware can and falls back to mul+add.
/// </summary>
[SkipLocalsInit]
readonly unsafe struct PortableKernel : IMicroKernel
{
    public static int MR => 4;
    public static int NR => 8;
    public static int MC => 128;
    public static int KC => 256;
    public static int NC => 4088;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, float* b, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        Vector128<float> c00 = default, c01 = default, c10 = default, c11 = default,
                         c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector128.Load(b);
            var b1 = Vector128.Load(b + 4);
            var t = Vector128.Create(a[0]); c00 = Vector128.MultiplyAddEstimate(t, b0, c00); c01 = Vector128.MultiplyAddEstimate(t, b1, c01);
            t = Vector128.Create(a[1]); c10 = Vector128.MultiplyAddEstimate(t, b0, c10); c11 = Vector128.MultiplyAddEstimate(t, b1, c11);
            t = Vector128.Create(a[2]); c20 = Vector128.MultiplyAddEstimate(t, b0, c20); c21 = Vector128.MultiplyAddEstimate(t, b1, c21);
            t = Vector128.Create(a[3]); c30 = Vector128.MultiplyAddEstimate(t, b0, c30); c31 = Vector128.MultiplyAddEstimate(t, b1, c31);
            a += 4; b += 8;
        }
        var va = Vector128.Create(alpha);
        float* tile = stackalloc float[32];
        Vector128.Store(c00 * va, tile); Vector128.Store(c01 * va, tile + 4);
        Vector128.Store(c10 * va, tile + 8); Vector128.Store(c11 * va, tile + 12);
        Vector128.Store(c20 * va, tile + 16); Vector128.Store(c21 * va, tile + 20);
        Vector128.Store(c30 * va, tile + 24); Vector128.Store(c31 * va, tile + 28);
        MicroKernelEdge.Store(tile, 8, c, ldc, mr, nr, beta);
    }

    /// <summary>Unpacked float32 operands: op(A)[i,p] = a[i·rsA + p·csA], op(B)[p,j] = b[p·csB + j].</summary>
    public static void RunStrided(int kc, float* a, long rsA, long csA, float* b, long csB, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        float* tile = stackalloc float[32];
        for (int i = 0; i < 4; i++)
        {
            float* ai = a + (mr > i ? i * rsA : 0);
            Vector128<float> s0 = default, s1 = default;
            long ia = 0, ib = 0;
            for (int p = 0; p < kc; p++, ia += csA, ib += csB)
            {
                var t = Vector128.Create(ai[ia]);
                s0 = Vector128.MultiplyAddEstimate(t, Vector128.Load(b + ib), s0);
                s1 = Vector128.MultiplyAddEstimate(t, Vector128.Load(b + ib + 4), s1);
            }
            Vector128.Store(s0 * alpha, tile + 8 * i);
            Vector128.Store(s1 * alpha, tile + 8 * i + 4);
        }
        MicroKernelEdge.Store(tile, 8, c, ldc, mr, nr, beta);
    }
}
