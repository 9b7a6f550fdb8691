using PeftSharp.Tensors;

namespace PeftSharp.Kernels.Blas;

/// <summary>
/// The managed GEMM driver (BLIS loop order), generic over the micro-kernel strategy:
/// <code>
/// for jc in n step NC            (B block of NC columns)
///   for pc in k step KC          (one KC slice of the sum; beta applies to the first slice only)
///     pack op(B)[pc.., jc..] → Bp (kc, NC) in NR-wide slivers, slivers split over threads
///     split the MR-row slivers of C (or the NR-column slivers when C has few rows) over threads; per thread:
///       for ic in its rows step MC: pack op(A)[ic.., pc..] → Ap (MC, kc) in MR-tall slivers (thread-local)
///         for each NR sliver of Bp (stays in L1), for each MR sliver of Ap (streams from L2): micro-kernel
/// </code>
/// Every C element is owned by one task and summed in the same order whatever the split, so results are
/// bit-identical for any thread count.
/// </summary>
static unsafe class PackedGemm<TK> where TK : struct, IMicroKernel
{
    // Below this many multiply-adds a product runs on the calling thread (task start-up would dominate).
    const long SerialWork = 1L << 17;

    // op(A) (m,k), op(B) (k,n), C (m,n) row-major with leading dimension ldc
    public static void Run(bool transA, bool transB, int m, int n, int k, float alpha, MatrixView a, MatrixView b,
        float beta, float* c, long ldc, int threads)
    {
        int MR = TK.MR, NR = TK.NR, KC = TK.KC, NC = TK.NC;
        if ((long)m * n * k <= SerialWork) threads = 1;
        using var bbuf = PackBuffer.RentB((long)Math.Min(k, KC) * RoundUp(Math.Min(n, NC), NR));
        float* bp = bbuf.Pointer;
        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc), slivers = (nc + NR - 1) / NR;
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                float betaSlice = pc == 0 ? beta : 1f;
                int jcL = jc, pcL = pc;
                GemmParallel.For(slivers, (long)kc * nc >= 1 << 14 ? threads : 1,
                    (q0, q1) => Packing.PackB<TK>(b, transB, pcL, kc, jcL, nc, q0, q1, bp));
                int rowSlivers = (m + MR - 1) / MR;
                if (rowSlivers >= slivers || threads == 1)
                    GemmParallel.For(rowSlivers, threads, (r0, r1) =>
                        Block(a, transA, r0 * MR, Math.Min(r1 * MR, m), pcL, kc, bp, 0, slivers, jcL, nc, alpha, betaSlice, c, ldc));
                else
                    GemmParallel.For(slivers, threads, (q0, q1) =>
                        Block(a, transA, 0, m, pcL, kc, bp, q0, q1, jcL, nc, alpha, betaSlice, c, ldc));
            }
        }
    }

    // C[i0..i1, slivers q0..q1 of the jc block] (+)= alpha · op(A)[i0..i1, pc..pc+kc] · Bp
    static void Block(in MatrixView a, bool transA, int i0, int i1, int pc, int kc, float* bp, int q0, int q1,
        int jc, int nc, float alpha, float beta, float* c, long ldc)
    {
        int MR = TK.MR, NR = TK.NR, MC = TK.MC;
        using var abuf = PackBuffer.RentA((long)MC * kc + 8);
        float* ap = abuf.Pointer;
        for (int ic = i0; ic < i1; ic += MC)
        {
            int mc = Math.Min(MC, i1 - ic);
            Packing.PackA<TK>(a, transA, ic, mc, pc, kc, ap);
            for (int q = q0; q < q1; q++)
            {
                int j = jc + q * NR, nr = Math.Min(NR, jc + nc - j);
                float* bq = bp + (long)q * kc * NR;
                float* cj = c + j;
                for (int r = 0; r * MR < mc; r++)
                {
                    int i = ic + r * MR, mr = Math.Min(MR, ic + mc - i);
                    TK.Run(kc, ap + (long)r * kc * MR, bq, cj + i * ldc, ldc, mr, nr, alpha, beta);
                }
            }
        }
    }

    static long RoundUp(long x, int to) => (x + to - 1) / to * to;
}
