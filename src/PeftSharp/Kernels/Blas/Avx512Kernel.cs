using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace PeftSharp.Kernels.Blas;

/// <summary>
/// AVX-512F strategy (Zen4/Zen5, Skylake-X and later): a 12×32 register tile = 24 zmm accumulators + 2 zmm of B +
/// 1 broadcast of A (27 of 32 zmm). Per k step: 2 loads of B, 12 broadcasts of A, 24 FMAs.
/// KC·NR·4 = 24 KiB B sliver + 9 KiB A sliver in a 32–48 KiB L1d; MC·KC·4 = 72 KiB A block in L2.
/// </summary>
[SkipLocalsInit]
readonly unsafe struct Avx512Kernel : IMicroKernel
{
    public static int MR => 12;
    public static int NR => 32;
    public static int MC => 96;
    public static int KC => 192;
    public static int NC => 4064;

    public static bool IsSupported => Avx512F.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, float* b, float* c, long ldc, int mr, int nr, float alpha, float beta)
    {
        Vector512<float> c000 = default, c001 = default, c010 = default, c011 = default, c020 = default, c021 = default, c030 = default, c031 = default, c040 = default, c041 = default, c050 = default, c051 = default, c060 = default, c061 = default, c070 = default, c071 = default, c080 = default, c081 = default, c090 = default, c091 = default, c100 = default, c101 = default, c110 = default, c111 = default;
        Vector512<float> b0, b1, t;
        int p = 0;
        for (; p + 4 <= kc; p += 4)
        {
            b0 = Vector512.Load(b + 0); b1 = Vector512.Load(b + 16);
            t = Vector512.Create(a[0]); c000 = Avx512F.FusedMultiplyAdd(t, b0, c000); c001 = Avx512F.FusedMultiplyAdd(t, b1, c001);
            t = Vector512.Create(a[1]); c010 = Avx512F.FusedMultiplyAdd(t, b0, c010); c011 = Avx512F.FusedMultiplyAdd(t, b1, c011);
            t = Vector512.Create(a[2]); c020 = Avx512F.FusedMultiplyAdd(t, b0, c020); c021 = Avx512F.FusedMultiplyAdd(t, b1, c021);
            t = Vector512.Create(a[3]); c030 = Avx512F.FusedMultiplyAdd(t, b0, c030); c031 = Avx512F.FusedMultiplyAdd(t, b1, c031);
            t = Vector512.Create(a[4]); c040 = Avx512F.FusedMultiplyAdd(t, b0, c040); c041 = Avx512F.FusedMultiplyAdd(t, b1, c041);
            t = Vector512.Create(a[5]); c050 = Avx512F.FusedMultiplyAdd(t, b0, c050); c051 = Avx512F.FusedMultiplyAdd(t, b1, c051);
            t = Vector512.Create(a[6]); c060 = Avx512F.FusedMultiplyAdd(t, b0, c060); c061 = Avx512F.FusedMultiplyAdd(t, b1, c061);
            t = Vector512.Create(a[7]); c070 = Avx512F.FusedMultiplyAdd(t, b0, c070); c071 = Avx512F.FusedMultiplyAdd(t, b1, c071);
            t = Vector512.Create(a[8]); c080 = Avx512F.FusedMultiplyAdd(t, b0, c080); c081 = Avx512F.FusedMultiplyAdd(t, b1, c081);
            t = Vector512.Create(a[9]); c090 = Avx512F.FusedMultiplyAdd(t, b0, c090); c091 = Avx512F.FusedMultiplyAdd(t, b1, c091);
            t = Vector512.Create(a[10]); c100 = Avx512F.FusedMultiplyAdd(t, b0, c100); c101 = Avx512F.FusedMultiplyAdd(t, b1, c101);
            t = Vector512.Create(a[11]); c110 = Avx512F.FusedMultiplyAdd(t, b0, c110); c111 = Avx512F.FusedMultiplyAdd(t, b1, c111);
            b0 = Vector512.Load(b + 32); b1 = Vector512.Load(b + 48);
            t = Vector512.Create(a[12]); c000 = Avx512F.FusedMultiplyAdd(t, b0, c000); c001 = Avx512F.FusedMultiplyAdd(t, b1, c001);
            t = Vector512.Create(a[13]); c010 = Avx512F.FusedMultiplyAdd(t, b0, c010); c011 = Avx512F.FusedMultiplyAdd(t, b1, c011);
            t = Vector512.Create(a[14]); c020 = Avx512F.FusedMultiplyAdd(t, b0, c020); c021 = Avx512F.FusedMultiplyAdd(t, b1, c021);
            t = Vector512.Create(a[15]); c030 = Avx512F.FusedMultiplyAdd(t, b0, c030); c031 = Avx512F.FusedMultiplyAdd(t, b1, c031);
            t = Vector512.Create(a[16]); c040 = Avx512F.FusedMultiplyAdd(t, b0, c040); c041 = Avx512F.FusedMultiplyAdd(t, b1, c041);
            t = Vector512.Create(a[17]); c050 = Avx512F.FusedMultiplyAdd(t, b0, c050); c051 = Avx512F.FusedMultiplyAdd(t, b1, c051);
            t = Vector512.Create(a[18]); c060 = Avx512F.FusedMultiplyAdd(t, b0, c060); c061 = Avx512F.FusedMultiplyAdd(t, b1, c061);
            t = Vector512.Create(a[19]); c070 = Avx512F.FusedMultiplyAdd(t, b0, c070); c071 = Avx512F.FusedMultiplyAdd(t, b1, c071);
            t = Vector512.Create(a[20]); c080 = Avx512F.FusedMultiplyAdd(t, b0, c080); c081 = Avx512F.FusedMultiplyAdd(t, b1, c081);
            t = Vector512.Create(a[21]); c090 = Avx512F.FusedMultiplyAdd(t, b0, c090); c091 = Avx512F.FusedMultiplyAdd(t, b1, c091);
            t = Vector512.Create(a[22]); c100 = Avx512F.FusedMultiplyAdd(t, b0, c100); c101 = Avx512F.FusedMultiplyAdd(t, b1, c101);
            t = Vector512.Create(a[23]); c110 = Avx512F.FusedMultiplyAdd(t, b0, c110); c111 = Avx512F.FusedMultiplyAdd(t, b1, c111);
            b0 = Vector512.Load(b + 64); b1 = Vector512.Load(b + 80);
            t = Vector512.Create(a[24]); c000 = Avx512F.FusedMultiplyAdd(t, b0, c000); c001 = Avx512F.FusedMultiplyAdd(t, b1, c001);
            t = Vector512.Create(a[25]); c010 = Avx512F.FusedMultiplyAdd(t, b0, c010); c011 = Avx512F.FusedMultiplyAdd(t, b1, c011);
            t = Vector512.Create(a[26]); c020 = Avx512F.FusedMultiplyAdd(t, b0, c020); c021 = Avx512F.FusedMultiplyAdd(t, b1, c021);
            t = Vector512.Create(a[27]); c030 = Avx512F.FusedMultiplyAdd(t, b0, c030); c031 = Avx512F.FusedMultiplyAdd(t, b1, c031);
            t = Vector512.Create(a[28]); c040 = Avx512F.FusedMultiplyAdd(t, b0, c040); c041 = Avx512F.FusedMultiplyAdd(t, b1, c041);
            t = Vector512.Create(a[29]); c050 = Avx512F.FusedMultiplyAdd(t, b0, c050); c051 = Avx512F.FusedMultiplyAdd(t, b1, c051);
            t = Vector512.Create(a[30]); c060 = Avx512F.FusedMultiplyAdd(t, b0, c060); c061 = Avx512F.FusedMultiplyAdd(t, b1, c061);
            t = Vector512.Create(a[31]); c070 = Avx512F.FusedMultiplyAdd(t, b0, c070); c071 = Avx512F.FusedMultiplyAdd(t, b1, c071);
            t = Vector512.Create(a[32]); c080 = Avx512F.FusedMultiplyAdd(t, b0, c080); c081 = Avx512F.FusedMultiplyAdd(t, b1, c081);
            t = Vector512.Create(a[33]); c090 = Avx512F.FusedMultiplyAdd(t, b0, c090); c091 = Avx512F.FusedMultiplyAdd(t, b1, c091);
            t = Vector512.Create(a[34]); c100 = Avx512F.FusedMultiplyAdd(t, b0, c100); c101 = Avx512F.FusedMultiplyAdd(t, b1, c101);
            t = Vector512.Create(a[35]); c110 = Avx512F.FusedMultiplyAdd(t, b0, c110); c111 = Avx512F.FusedMultiplyAdd(t, b1, c111);
            b0 = Vector512.Load(b + 96); b1 = Vector512.Load(b + 112);
            t = Vector512.Create(a[36]); c000 = Avx512F.FusedMultiplyAdd(t, b0, c000); c001 = Avx512F.FusedMultiplyAdd(t, b1, c001);
            t = Vector512.Create(a[37]); c010 = Avx512F.FusedMultiplyAdd(t, b0, c010); c011 = Avx512F.FusedMultiplyAdd(t, b1, c011);
            t = Vector512.Create(a[38]); c020 = Avx512F.FusedMultiplyAdd(t, b0, c020); c021 = Avx512F.FusedMultiplyAdd(t, b1, c021);
            t = Vector512.Create(a[39]); c030 = Avx512F.FusedMultiplyAdd(t, b0, c030); c031 = Avx512F.FusedMultiplyAdd(t, b1, c031);
            t = Vector512.Create(a[40]); c040 = Avx512F.FusedMultiplyAdd(t, b0, c040); c041 = Avx512F.FusedMultiplyAdd(t, b1, c041);
            t = Vector512.Create(a[41]); c050 = Avx512F.FusedMultiplyAdd(t, b0, c050); c051 = Avx512F.FusedMultiplyAdd(t, b1, c051);
            t = Vector512.Create(a[42]); c060 = Avx512F.FusedMultiplyAdd(t, b0, c060); c061 = Avx512F.FusedMultiplyAdd(t, b1, c061);
            t = Vector512.Create(a[43]); c070 = Avx512F.FusedMultiplyAdd(t, b0, c070); c071 = Avx512F.FusedMultiplyAdd(t, b1, c071);
            t = Vector512.Create(a[44]); c080 = Avx512F.FusedMultiplyAdd(t, b0, c080); c081 = Avx512F.FusedMultiplyAdd(t, b1, c081);
            t = Vector512.Create(a[45]); c090 = Avx512F.FusedMultiplyAdd(t, b0, c090); c091 = Avx512F.FusedMultiplyAdd(t, b1, c091);
            t = Vector512.Create(a[46]); c100 = Avx512F.FusedMultiplyAdd(t, b0, c100); c101 = Avx512F.FusedMultiplyAdd(t, b1, c101);
            t = Vector512.Create(a[47]); c110 = Avx512F.FusedMultiplyAdd(t, b0, c110); c111 = Avx512F.FusedMultiplyAdd(t, b1, c111);
            a += 48; b += 128;
        }
        for (; p < kc; p++)
        {
            b0 = Vector512.Load(b + 0); b1 = Vector512.Load(b + 16);
            t = Vector512.Create(a[0]); c000 = Avx512F.FusedMultiplyAdd(t, b0, c000); c001 = Avx512F.FusedMultiplyAdd(t, b1, c001);
            t = Vector512.Create(a[1]); c010 = Avx512F.FusedMultiplyAdd(t, b0, c010); c011 = Avx512F.FusedMultiplyAdd(t, b1, c011);
            t = Vector512.Create(a[2]); c020 = Avx512F.FusedMultiplyAdd(t, b0, c020); c021 = Avx512F.FusedMultiplyAdd(t, b1, c021);
            t = Vector512.Create(a[3]); c030 = Avx512F.FusedMultiplyAdd(t, b0, c030); c031 = Avx512F.FusedMultiplyAdd(t, b1, c031);
            t = Vector512.Create(a[4]); c040 = Avx512F.FusedMultiplyAdd(t, b0, c040); c041 = Avx512F.FusedMultiplyAdd(t, b1, c041);
            t = Vector512.Create(a[5]); c050 = Avx512F.FusedMultiplyAdd(t, b0, c050); c051 = Avx512F.FusedMultiplyAdd(t, b1, c051);
            t = Vector512.Create(a[6]); c060 = Avx512F.FusedMultiplyAdd(t, b0, c060); c061 = Avx512F.FusedMultiplyAdd(t, b1, c061);
            t = Vector512.Create(a[7]); c070 = Avx512F.FusedMultiplyAdd(t, b0, c070); c071 = Avx512F.FusedMultiplyAdd(t, b1, c071);
            t = Vector512.Create(a[8]); c080 = Avx512F.FusedMultiplyAdd(t, b0, c080); c081 = Avx512F.FusedMultiplyAdd(t, b1, c081);
            t = Vector512.Create(a[9]); c090 = Avx512F.FusedMultiplyAdd(t, b0, c090); c091 = Avx512F.FusedMultiplyAdd(t, b1, c091);
            t = Vector512.Create(a[10]); c100 = Avx512F.FusedMultiplyAdd(t, b0, c100); c101 = Avx512F.FusedMultiplyAdd(t, b1, c101);
            t = Vector512.Create(a[11]); c110 = Avx512F.FusedMultiplyAdd(t, b0, c110); c111 = Avx512F.FusedMultiplyAdd(t, b1, c111);
            a += 12; b += 32;
        }
        var va = Vector512.Create(alpha);
        if (mr == 12 && nr == 32)
        {
            var vb = Vector512.Create(beta);
            Out(c + 0 * ldc, c000, c001, va, vb, beta);
            Out(c + 1 * ldc, c010, c011, va, vb, beta);
            Out(c + 2 * ldc, c020, c021, va, vb, beta);
            Out(c + 3 * ldc, c030, c031, va, vb, beta);
            Out(c + 4 * ldc, c040, c041, va, vb, beta);
            Out(c + 5 * ldc, c050, c051, va, vb, beta);
            Out(c + 6 * ldc, c060, c061, va, vb, beta);
            Out(c + 7 * ldc, c070, c071, va, vb, beta);
            Out(c + 8 * ldc, c080, c081, va, vb, beta);
            Out(c + 9 * ldc, c090, c091, va, vb, beta);
            Out(c + 10 * ldc, c100, c101, va, vb, beta);
            Out(c + 11 * ldc, c110, c111, va, vb, beta);
            return;
        }
        float* tile = stackalloc float[384];
        Vector512.Store(c000 * va, tile + 0); Vector512.Store(c001 * va, tile + 16);
        Vector512.Store(c010 * va, tile + 32); Vector512.Store(c011 * va, tile + 48);
        Vector512.Store(c020 * va, tile + 64); Vector512.Store(c021 * va, tile + 80);
        Vector512.Store(c030 * va, tile + 96); Vector512.Store(c031 * va, tile + 112);
        Vector512.Store(c040 * va, tile + 128); Vector512.Store(c041 * va, tile + 144);
        Vector512.Store(c050 * va, tile + 160); Vector512.Store(c051 * va, tile + 176);
        Vector512.Store(c060 * va, tile + 192); Vector512.Store(c061 * va, tile + 208);
        Vector512.Store(c070 * va, tile + 224); Vector512.Store(c071 * va, tile + 240);
        Vector512.Store(c080 * va, tile + 256); Vector512.Store(c081 * va, tile + 272);
        Vector512.Store(c090 * va, tile + 288); Vector512.Store(c091 * va, tile + 304);
        Vector512.Store(c100 * va, tile + 320); Vector512.Store(c101 * va, tile + 336);
        Vector512.Store(c110 * va, tile + 352); Vector512.Store(c111 * va, tile + 368);
        MicroKernelEdge.Store(tile, 32, c, ldc, mr, nr, beta);
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
        float* a6 = a + (mr > 6 ? 6 * rsA : 0);
        float* a7 = a + (mr > 7 ? 7 * rsA : 0);
        float* a8 = a + (mr > 8 ? 8 * rsA : 0);
        float* a9 = a + (mr > 9 ? 9 * rsA : 0);
        float* a10 = a + (mr > 10 ? 10 * rsA : 0);
        float* a11 = a + (mr > 11 ? 11 * rsA : 0);
        Vector512<float> c000 = default, c001 = default, c010 = default, c011 = default, c020 = default, c021 = default, c030 = default, c031 = default, c040 = default, c041 = default, c050 = default, c051 = default, c060 = default, c061 = default, c070 = default, c071 = default, c080 = default, c081 = default, c090 = default, c091 = default, c100 = default, c101 = default, c110 = default, c111 = default;
        long ia = 0, ib = 0;
        for (int p = 0; p < kc; p++, ia += csA, ib += csB)
        {
            var b0 = Vector512.Load(b + ib); var b1 = Vector512.Load(b + ib + 16);
            var t0 = Vector512.Create(a0[ia]); c000 = Avx512F.FusedMultiplyAdd(t0, b0, c000); c001 = Avx512F.FusedMultiplyAdd(t0, b1, c001);
            var t1 = Vector512.Create(a1[ia]); c010 = Avx512F.FusedMultiplyAdd(t1, b0, c010); c011 = Avx512F.FusedMultiplyAdd(t1, b1, c011);
            var t2 = Vector512.Create(a2[ia]); c020 = Avx512F.FusedMultiplyAdd(t2, b0, c020); c021 = Avx512F.FusedMultiplyAdd(t2, b1, c021);
            var t3 = Vector512.Create(a3[ia]); c030 = Avx512F.FusedMultiplyAdd(t3, b0, c030); c031 = Avx512F.FusedMultiplyAdd(t3, b1, c031);
            var t4 = Vector512.Create(a4[ia]); c040 = Avx512F.FusedMultiplyAdd(t4, b0, c040); c041 = Avx512F.FusedMultiplyAdd(t4, b1, c041);
            var t5 = Vector512.Create(a5[ia]); c050 = Avx512F.FusedMultiplyAdd(t5, b0, c050); c051 = Avx512F.FusedMultiplyAdd(t5, b1, c051);
            var t6 = Vector512.Create(a6[ia]); c060 = Avx512F.FusedMultiplyAdd(t6, b0, c060); c061 = Avx512F.FusedMultiplyAdd(t6, b1, c061);
            var t7 = Vector512.Create(a7[ia]); c070 = Avx512F.FusedMultiplyAdd(t7, b0, c070); c071 = Avx512F.FusedMultiplyAdd(t7, b1, c071);
            var t8 = Vector512.Create(a8[ia]); c080 = Avx512F.FusedMultiplyAdd(t8, b0, c080); c081 = Avx512F.FusedMultiplyAdd(t8, b1, c081);
            var t9 = Vector512.Create(a9[ia]); c090 = Avx512F.FusedMultiplyAdd(t9, b0, c090); c091 = Avx512F.FusedMultiplyAdd(t9, b1, c091);
            var t10 = Vector512.Create(a10[ia]); c100 = Avx512F.FusedMultiplyAdd(t10, b0, c100); c101 = Avx512F.FusedMultiplyAdd(t10, b1, c101);
            var t11 = Vector512.Create(a11[ia]); c110 = Avx512F.FusedMultiplyAdd(t11, b0, c110); c111 = Avx512F.FusedMultiplyAdd(t11, b1, c111);
        }
        var va = Vector512.Create(alpha);
        if (mr == 12 && nr == 32)
        {
            var vb = Vector512.Create(beta);
            Out(c + 0 * ldc, c000, c001, va, vb, beta);
            Out(c + 1 * ldc, c010, c011, va, vb, beta);
            Out(c + 2 * ldc, c020, c021, va, vb, beta);
            Out(c + 3 * ldc, c030, c031, va, vb, beta);
            Out(c + 4 * ldc, c040, c041, va, vb, beta);
            Out(c + 5 * ldc, c050, c051, va, vb, beta);
            Out(c + 6 * ldc, c060, c061, va, vb, beta);
            Out(c + 7 * ldc, c070, c071, va, vb, beta);
            Out(c + 8 * ldc, c080, c081, va, vb, beta);
            Out(c + 9 * ldc, c090, c091, va, vb, beta);
            Out(c + 10 * ldc, c100, c101, va, vb, beta);
            Out(c + 11 * ldc, c110, c111, va, vb, beta);
            return;
        }
        float* tile = stackalloc float[384];
        Vector512.Store(c000 * va, tile + 0); Vector512.Store(c001 * va, tile + 16);
        Vector512.Store(c010 * va, tile + 32); Vector512.Store(c011 * va, tile + 48);
        Vector512.Store(c020 * va, tile + 64); Vector512.Store(c021 * va, tile + 80);
        Vector512.Store(c030 * va, tile + 96); Vector512.Store(c031 * va, tile + 112);
        Vector512.Store(c040 * va, tile + 128); Vector512.Store(c041 * va, tile + 144);
        Vector512.Store(c050 * va, tile + 160); Vector512.Store(c051 * va, tile + 176);
        Vector512.Store(c060 * va, tile + 192); Vector512.Store(c061 * va, tile + 208);
        Vector512.Store(c070 * va, tile + 224); Vector512.Store(c071 * va, tile + 240);
        Vector512.Store(c080 * va, tile + 256); Vector512.Store(c081 * va, tile + 272);
        Vector512.Store(c090 * va, tile + 288); Vector512.Store(c091 * va, tile + 304);
        Vector512.Store(c100 * va, tile + 320); Vector512.Store(c101 * va, tile + 336);
        Vector512.Store(c110 * va, tile + 352); Vector512.Store(c111 * va, tile + 368);
        MicroKernelEdge.Store(tile, 32, c, ldc, mr, nr, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Out(float* c, Vector512<float> x0, Vector512<float> x1, Vector512<float> va, Vector512<float> vb, float beta)
    {
        if (beta == 0)
        {
            Vector512.Store(x0 * va, c);
            Vector512.Store(x1 * va, c + 16);
        }
        else if (beta == 1)
        {
            Vector512.Store(Avx512F.FusedMultiplyAdd(x0, va, Vector512.Load(c)), c);
            Vector512.Store(Avx512F.FusedMultiplyAdd(x1, va, Vector512.Load(c + 16)), c + 16);
        }
        else
        {
            Vector512.Store(Avx512F.FusedMultiplyAdd(x0, va, Vector512.Load(c) * vb), c);
            Vector512.Store(Avx512F.FusedMultiplyAdd(x1, va, Vector512.Load(c + 16) * vb), c + 16);
        }
    }
}
