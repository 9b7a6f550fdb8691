using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace PeftSharp.Kernels.Blas;

/// <summary>
/// AVX2 + FMA strategy: a 6×16 register tile = 12 ymm accumulators + 2 ymm of B + 1 broadcast of A (15 of 16 ymm).
/// Per k step: 2 aligned loads of B, 6 broadcasts of A, 12 FMAs (2 FMA pipes → 6 cycles, loads well under the port limit).
/// Blocking for Zen (32–48 KiB L1d, 512 KiB–1 MiB L2): KC·NR·4 = 16 KiB B sliver in L1, MC·KC·4 = 144 KiB A block in L2.
/// </summary>
[SkipLocalsInit]
readonly unsafe struct Avx2Kernel : IMicroKernel
{
    public static int MR => 6;
    public static int NR => 16;
    public static int MC => 96;
    public static int KC => 256;
    public static int NC => 4080;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, float* b, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector256<float> b0, b1, t;
        int p = 0;
        for (; p + 4 <= kc; p += 4)
        {
            b0 = Avx.LoadAlignedVector256(b + 0); b1 = Avx.LoadAlignedVector256(b + 8);
            t = Vector256.Create(a[0]); c00 = Fma.MultiplyAdd(t, b0, c00); c01 = Fma.MultiplyAdd(t, b1, c01);
            t = Vector256.Create(a[1]); c10 = Fma.MultiplyAdd(t, b0, c10); c11 = Fma.MultiplyAdd(t, b1, c11);
            t = Vector256.Create(a[2]); c20 = Fma.MultiplyAdd(t, b0, c20); c21 = Fma.MultiplyAdd(t, b1, c21);
            t = Vector256.Create(a[3]); c30 = Fma.MultiplyAdd(t, b0, c30); c31 = Fma.MultiplyAdd(t, b1, c31);
            t = Vector256.Create(a[4]); c40 = Fma.MultiplyAdd(t, b0, c40); c41 = Fma.MultiplyAdd(t, b1, c41);
            t = Vector256.Create(a[5]); c50 = Fma.MultiplyAdd(t, b0, c50); c51 = Fma.MultiplyAdd(t, b1, c51);
            b0 = Avx.LoadAlignedVector256(b + 16); b1 = Avx.LoadAlignedVector256(b + 24);
            t = Vector256.Create(a[6]); c00 = Fma.MultiplyAdd(t, b0, c00); c01 = Fma.MultiplyAdd(t, b1, c01);
            t = Vector256.Create(a[7]); c10 = Fma.MultiplyAdd(t, b0, c10); c11 = Fma.MultiplyAdd(t, b1, c11);
            t = Vector256.Create(a[8]); c20 = Fma.MultiplyAdd(t, b0, c20); c21 = Fma.MultiplyAdd(t, b1, c21);
            t = Vector256.Create(a[9]); c30 = Fma.MultiplyAdd(t, b0, c30); c31 = Fma.MultiplyAdd(t, b1, c31);
            t = Vector256.Create(a[10]); c40 = Fma.MultiplyAdd(t, b0, c40); c41 = Fma.MultiplyAdd(t, b1, c41);
            t = Vector256.Create(a[11]); c50 = Fma.MultiplyAdd(t, b0, c50); c51 = Fma.MultiplyAdd(t, b1, c51);
            b0 = Avx.LoadAlignedVector256(b + 32); b1 = Avx.LoadAlignedVector256(b + 40);
            t = Vector256.Create(a[12]); c00 = Fma.MultiplyAdd(t, b0, c00); c01 = Fma.MultiplyAdd(t, b1, c01);
            t = Vector256.Create(a[13]); c10 = Fma.MultiplyAdd(t, b0, c10); c11 = Fma.MultiplyAdd(t, b1, c11);
            t = Vector256.Create(a[14]); c20 = Fma.MultiplyAdd(t, b0, c20); c21 = Fma.MultiplyAdd(t, b1, c21);
            t = Vector256.Create(a[15]); c30 = Fma.MultiplyAdd(t, b0, c30); c31 = Fma.MultiplyAdd(t, b1, c31);
            t = Vector256.Create(a[16]); c40 = Fma.MultiplyAdd(t, b0, c40); c41 = Fma.MultiplyAdd(t, b1, c41);
            t = Vector256.Create(a[17]); c50 = Fma.MultiplyAdd(t, b0, c50); c51 = Fma.MultiplyAdd(t, b1, c51);
            b0 = Avx.LoadAlignedVector256(b + 48); b1 = Avx.LoadAlignedVector256(b + 56);
            t = Vector256.Create(a[18]); c00 = Fma.MultiplyAdd(t, b0, c00); c01 = Fma.MultiplyAdd(t, b1, c01);
            t = Vector256.Create(a[19]); c10 = Fma.MultiplyAdd(t, b0, c10); c11 = Fma.MultiplyAdd(t, b1, c11);
            t = Vector256.Create(a[20]); c20 = Fma.MultiplyAdd(t, b0, c20); c21 = Fma.MultiplyAdd(t, b1, c21);
            t = Vector256.Create(a[21]); c30 = Fma.MultiplyAdd(t, b0, c30); c31 = Fma.MultiplyAdd(t, b1, c31);
            t = Vector256.Create(a[22]); c40 = Fma.MultiplyAdd(t, b0, c40); c41 = Fma.MultiplyAdd(t, b1, c41);
            t = Vector256.Create(a[23]); c50 = Fma.MultiplyAdd(t, b0, c50); c51 = Fma.MultiplyAdd(t, b1, c51);
            a += 24; b += 64;
        }
        for (; p < kc; p++)
        {
            b0 = Avx.LoadAlignedVector256(b + 0); b1 = Avx.LoadAlignedVector256(b + 8);
            t = Vector256.Create(a[0]); c00 = Fma.MultiplyAdd(t, b0, c00); c01 = Fma.MultiplyAdd(t, b1, c01);
            t = Vector256.Create(a[1]); c10 = Fma.MultiplyAdd(t, b0, c10); c11 = Fma.MultiplyAdd(t, b1, c11);
            t = Vector256.Create(a[2]); c20 = Fma.MultiplyAdd(t, b0, c20); c21 = Fma.MultiplyAdd(t, b1, c21);
            t = Vector256.Create(a[3]); c30 = Fma.MultiplyAdd(t, b0, c30); c31 = Fma.MultiplyAdd(t, b1, c31);
            t = Vector256.Create(a[4]); c40 = Fma.MultiplyAdd(t, b0, c40); c41 = Fma.MultiplyAdd(t, b1, c41);
            t = Vector256.Create(a[5]); c50 = Fma.MultiplyAdd(t, b0, c50); c51 = Fma.MultiplyAdd(t, b1, c51);
            a += 6; b += 16;
        }
        var va = Vector256.Create(alpha);
        if (mr == 6 && nr == 16)
        {
            var vb = Vector256.Create(beta);
            Out(c + 0 * ldc, c00, c01, va, vb, beta);
            Out(c + 1 * ldc, c10, c11, va, vb, beta);
            Out(c + 2 * ldc, c20, c21, va, vb, beta);
            Out(c + 3 * ldc, c30, c31, va, vb, beta);
            Out(c + 4 * ldc, c40, c41, va, vb, beta);
            Out(c + 5 * ldc, c50, c51, va, vb, beta);
            return;
        }
        float* tile = stackalloc float[96];
        Vector256.Store(c00 * va, tile + 0); Vector256.Store(c01 * va, tile + 8);
        Vector256.Store(c10 * va, tile + 16); Vector256.Store(c11 * va, tile + 24);
        Vector256.Store(c20 * va, tile + 32); Vector256.Store(c21 * va, tile + 40);
        Vector256.Store(c30 * va, tile + 48); Vector256.Store(c31 * va, tile + 56);
        Vector256.Store(c40 * va, tile + 64); Vector256.Store(c41 * va, tile + 72);
        Vector256.Store(c50 * va, tile + 80); Vector256.Store(c51 * va, tile + 88);
        MicroKernelEdge.Store(tile, 16, c, ldc, mr, nr, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Out(float* c, Vector256<float> x0, Vector256<float> x1, Vector256<float> va, Vector256<float> vb, float beta)
    {
        if (beta == 0)
        {
        Vector256.Store(x0 * va, c);
        Vector256.Store(x1 * va, c + 8);
        }
        else if (beta == 1)
        {
        Vector256.Store(Fma.MultiplyAdd(x0, va, Vector256.Load(c)), c);
        Vector256.Store(Fma.MultiplyAdd(x1, va, Vector256.Load(c + 8)), c + 8);
        }
        else
        {
        Vector256.Store(Fma.MultiplyAdd(x0, va, Vector256.Load(c) * vb), c);
        Vector256.Store(Fma.MultiplyAdd(x1, va, Vector256.Load(c + 8) * vb), c + 8);
        }
    }
}
