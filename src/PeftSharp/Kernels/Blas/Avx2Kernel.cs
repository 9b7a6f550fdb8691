using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace PeftSharp.Kernels.Blas;

/// <summary>
/// AVX2 + FMA strategy: a 6×16 register tile = 12 ymm accumulators + 2 ymm of B + 1 broadcast of A (15 of 16 ymm).
/// Per k step: 2 aligned loads of B, 6 broadcasts of A, 12 FMAs (2 FMA pipes → 6 cycles, loads well under the port limit).
/// Blocking for Zen (32–48 KiB L1d, 512 KiB–1 MiB L2): KC·NR·4 = 16 KiB B sliver in L1, MC·KC·4 = 96 KiB A block in L2.
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

    /// <summary>
    /// The same tile read straight from float32 operands, no packing: op(A)[i,p] = a[i·rsA + p·csA], op(B)[p,j] = b[p·csB + j].
    /// Used when an operand is touched too few times for packing to pay (LoRA rank-r products). Rows ≥ mr read row 0
    /// (their results are discarded); all NR columns of b must exist.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunStrided(int kc, float* a, long rsA, long csA, float* b, long csB, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        float* a0 = a + (mr > 0 ? 0 * rsA : 0);
        float* a1 = a + (mr > 1 ? 1 * rsA : 0);
        float* a2 = a + (mr > 2 ? 2 * rsA : 0);
        float* a3 = a + (mr > 3 ? 3 * rsA : 0);
        float* a4 = a + (mr > 4 ? 4 * rsA : 0);
        float* a5 = a + (mr > 5 ? 5 * rsA : 0);
        Vector256<float> c000 = default, c001 = default, c010 = default, c011 = default, c020 = default, c021 = default, c030 = default, c031 = default, c040 = default, c041 = default, c050 = default, c051 = default;
        long ia = 0, ib = 0;
        for (int p = 0; p < kc; p++, ia += csA, ib += csB)
        {
            var b0 = Vector256.Load(b + ib); var b1 = Vector256.Load(b + ib + 8);
            var t0 = Vector256.Create(a0[ia]); c000 = Fma.MultiplyAdd(t0, b0, c000); c001 = Fma.MultiplyAdd(t0, b1, c001);
            var t1 = Vector256.Create(a1[ia]); c010 = Fma.MultiplyAdd(t1, b0, c010); c011 = Fma.MultiplyAdd(t1, b1, c011);
            var t2 = Vector256.Create(a2[ia]); c020 = Fma.MultiplyAdd(t2, b0, c020); c021 = Fma.MultiplyAdd(t2, b1, c021);
            var t3 = Vector256.Create(a3[ia]); c030 = Fma.MultiplyAdd(t3, b0, c030); c031 = Fma.MultiplyAdd(t3, b1, c031);
            var t4 = Vector256.Create(a4[ia]); c040 = Fma.MultiplyAdd(t4, b0, c040); c041 = Fma.MultiplyAdd(t4, b1, c041);
            var t5 = Vector256.Create(a5[ia]); c050 = Fma.MultiplyAdd(t5, b0, c050); c051 = Fma.MultiplyAdd(t5, b1, c051);
        }
        var va = Vector256.Create(alpha);
        if (mr == 6 && nr == 16)
        {
            var vb = Vector256.Create(beta);
            Out(c + 0 * ldc, c000, c001, va, vb, beta);
            Out(c + 1 * ldc, c010, c011, va, vb, beta);
            Out(c + 2 * ldc, c020, c021, va, vb, beta);
            Out(c + 3 * ldc, c030, c031, va, vb, beta);
            Out(c + 4 * ldc, c040, c041, va, vb, beta);
            Out(c + 5 * ldc, c050, c051, va, vb, beta);
            return;
        }
        float* tile = stackalloc float[96];
        Vector256.Store(c000 * va, tile + 0); Vector256.Store(c001 * va, tile + 8);
        Vector256.Store(c010 * va, tile + 16); Vector256.Store(c011 * va, tile + 24);
        Vector256.Store(c020 * va, tile + 32); Vector256.Store(c021 * va, tile + 40);
        Vector256.Store(c030 * va, tile + 48); Vector256.Store(c031 * va, tile + 56);
        Vector256.Store(c040 * va, tile + 64); Vector256.Store(c041 * va, tile + 72);
        Vector256.Store(c050 * va, tile + 80); Vector256.Store(c051 * va, tile + 88);
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
