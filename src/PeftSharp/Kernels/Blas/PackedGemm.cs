using PeftSharp.Compute;
using PeftSharp.Tensors;

namespace PeftSharp.Kernels.Blas;

/// <summary>
/// The managed GEMM driver (BLIS loop order), generic over the micro-kernel strategy:
/// <code>
/// for each step (jc in n step NC, pc in k step KC)   beta applies to the first KC slice only
///   Bp = op(B)[pc.., jc..] packed (kc, NC) in NR-wide slivers
///   split the MR-row slivers of C (or the NR-column slivers when C has few rows) over the tasks; per task:
///     for ic in its rows step MC: pack op(A)[ic.., pc..] → Ap (MC, kc) in MR-tall slivers (thread-local, L2)
///       for each NR sliver of Bp (stays in L1), for each MR sliver of Ap: micro-kernel
/// </code>
/// Usually a whole k × nb block of B is packed first and the tasks then run all its KC steps without a barrier; when
/// k is so long that such blocks would be narrow, B goes KC slice by KC slice, the next slice packed one step ahead
/// into a second buffer by the same tasks, so a step costs one fork/join. A float32 operand that would be used too few times to repay its packing (rank-r LoRA products) is read
/// in place by the strided micro-kernel instead. Every C element is owned by one task and summed in the same order whatever the split, so the results
/// are bit-identical for any thread count.
/// </summary>
static unsafe class PackedGemm<TK> where TK : struct, IMicroKernel
{
    // Below this many multiply-adds (~10–20 µs on one core) a product runs on the calling thread: a fork/join costs
    // several µs, more than splitting would save.
    const long SerialWork = 1L << 20;
    // A packed B block up to this many floats (16 MiB, L3-resident) is packed whole before computing it.
    const long UpfrontFloats = 1L << 22;

    // op(A) (m,k), op(B) (k,n), C (m,n) row-major with leading dimension ldc
    public static void Run(bool transA, bool transB, int m, int n, int k, float alpha, MatrixView a, MatrixView b,
        float beta, float* c, long ldc, int threads, BufferPool pool)
    {
        int MR = TK.MR, NR = TK.NR, KC = TK.KC, NC = TK.NC;
        if ((long)m * n * k <= SerialWork) threads = 1;
        int rowSlivers = (m + MR - 1) / MR;
        // Operands touched too few times for packing to pay are read in place (float32 only): A when C has few
        // columns (x·Aᵀ of a LoRA rank-r product), B when C has few rows and whole NR slivers (dW of a rank-r factor).
        bool directA = a.DType == DType.F32 && n <= 4 * NR;
        bool directB = b.DType == DType.F32 && !transB && n % NR == 0 && m <= 4 * MR;
        var operands = new Operands(a, transA, b, directA, directB);
        int pcSteps = (k + KC - 1) / KC;
        // Column block width: whole packed blocks of k × nb (≤ UpfrontFloats) when that keeps nb ≥ 512 (A is packed
        // again for each block, so narrow blocks would repeat that too often); NC-wide KC slices otherwise.
        int nb = directB ? NC : (int)Math.Min(NC, UpfrontFloats / k / NR * NR);
        bool wholeBlocks = directB || nb >= Math.Min(RoundUp(n, NR), 512);
        if (!wholeBlocks) nb = NC;
        int steps = (n + nb - 1) / nb * pcSteps;
        // step s ↔ (jc, pc): s = jcIndex · pcSteps + pcIndex
        (int jc, int nc, int pc, int kc) Step(int s)
        {
            int jc = s / pcSteps * nb, pc = s % pcSteps * KC;
            return (jc, Math.Min(nb, n - jc), pc, Math.Min(KC, k - pc));
        }
        void PackStep(int s, float* dst, int part, int parts)
        {
            var (jc, nc, pc, kc) = Step(s);
            var (q0, q1) = GemmParallel.Range((nc + NR - 1) / NR, part, parts);
            Packing.PackB<TK>(b, transB, pc, kc, jc, nc, q0, q1, dst);
        }
        // one task's share of step s: its MR-row slivers of C (or its NR-column slivers when C has few rows)
        void ComputeStep(int s, float* bp, int part, int parts)
        {
            var (jc, nc, pc, kc) = Step(s);
            float betaSlice = pc == 0 ? beta : 1f;
            int slivers = (nc + NR - 1) / NR;
            if (rowSlivers >= slivers)
            {
                var (r0, r1) = GemmParallel.Range(rowSlivers, part, parts);
                Block(pool, operands, r0 * MR, Math.Min(r1 * MR, m), pc, kc, bp, 0, slivers, jc, nc, alpha, betaSlice, c, ldc);
            }
            else
            {
                var (q0, q1) = GemmParallel.Range(slivers, part, parts);
                Block(pool, operands, 0, m, pc, kc, bp, q0, q1, jc, nc, alpha, betaSlice, c, ldc);
            }
        }

        if (wholeBlocks)
        {
            // Pack a whole k × nb block of B, then every task runs all KC steps of it on its own share of C with no
            // barrier in between: two fork/joins per block instead of one per step (small products, noisy machines).
            long blockFloats = directB ? 0 : (long)k * RoundUp(Math.Min(n, nb), NR);
            using var buf = pool.Rent(blockFloats);
            float* blockB = buf.Pointer;
            // step s's slivers start after the KC slices before it in its block
            float* StepB(int s) { var (_, nc, pc, _) = Step(s); return blockB + (long)pc * RoundUp(nc, NR); }
            int packParts = blockFloats >= 1 << 14 ? threads : 1;
            for (int s0 = 0; s0 < steps; s0 += pcSteps)
            {
                int first = s0;
                if (!directB)
                    GemmParallel.For(packParts, part => { for (int s = first; s < first + pcSteps; s++) PackStep(s, StepB(s), part, packParts); });
                GemmParallel.For(threads, part => { for (int s = first; s < first + pcSteps; s++) ComputeStep(s, StepB(s), part, threads); });
            }
            return;
        }

        // Long k: a KC×NC slice at a time, the next slice packed during the current step by the same tasks.
        long bFloats = (long)Math.Min(k, KC) * RoundUp(Math.Min(n, NC), NR);
        using var bbuf = pool.Rent(2 * bFloats);
        float* bufs0 = bbuf.Pointer, bufs1 = bbuf.Pointer + bFloats;
        GemmParallel.For(threads, part => PackStep(0, bufs0, part, threads));
        for (int s = 0; s < steps; s++)
        {
            float* cur = s % 2 == 0 ? bufs0 : bufs1, next = s % 2 == 0 ? bufs1 : bufs0;
            int step = s;
            GemmParallel.For(threads, part =>
            {
                if (step + 1 < steps) PackStep(step + 1, next, part, threads);
                ComputeStep(step, cur, part, threads);
            });
        }
    }

    /// <summary>The operands and which of them are read in place instead of packed.</summary>
    readonly record struct Operands(MatrixView A, bool TransA, MatrixView B, bool DirectA, bool DirectB);

    // C[i0..i1, slivers q0..q1 of the jc block] (+)= alpha · op(A)[i0..i1, pc..pc+kc] · op(B)[pc..pc+kc, jc-block slivers]
    // bp: the packed B block (unused when B is read in place)
    static void Block(BufferPool pool, in Operands o, int i0, int i1, int pc, int kc, float* bp, int q0, int q1,
        int jc, int nc, float alpha, float beta, float* c, long ldc)
    {
        if (i0 >= i1 || q0 >= q1) return;
        int MR = TK.MR, NR = TK.NR, MC = TK.MC;
        // in-place strides: op(A)[i,p] = A[i·rsA + p·csA]; op(B)[p,j] = B[p·ldb + j]
        long lda = o.A.Stride, ldb = o.B.Stride;
        long rsA = o.TransA ? 1 : lda, csA = o.TransA ? lda : 1;
        float* aRaw = (float*)o.A.Data, bRaw = (float*)o.B.Data;
        using var abuf = o.DirectA ? default : pool.Rent((long)MC * kc + 16);
        float* ap = o.DirectA ? null : abuf.Pointer;
        bool packed = !o.DirectA && !o.DirectB;
        for (int ic = i0; ic < i1; ic += MC)
        {
            int mc = Math.Min(MC, i1 - ic);
            if (!o.DirectA) Packing.PackA<TK>(o.A, o.TransA, ic, mc, pc, kc, ap);
            for (int q = q0; q < q1; q++)
            {
                int j = jc + q * NR, nr = Math.Min(NR, jc + nc - j);
                float* bq = o.DirectB ? bRaw + pc * ldb + j : bp + (long)q * kc * NR;
                long csB = o.DirectB ? ldb : NR;
                float* cj = c + j;
                for (int r = 0; r * MR < mc; r++)
                {
                    int i = ic + r * MR, mr = Math.Min(MR, ic + mc - i);
                    if (packed)
                        TK.Run(kc, ap + (long)r * kc * MR, bq, cj + i * ldc, ldc, mr, nr, alpha, beta);
                    else if (o.DirectA)
                        TK.RunStrided(kc, aRaw + i * rsA + pc * csA, rsA, csA, bq, csB, cj + i * ldc, ldc, mr, nr, alpha, beta);
                    else
                        TK.RunStrided(kc, ap + (long)r * kc * MR, 1, MR, bq, csB, cj + i * ldc, ldc, mr, nr, alpha, beta);
                }
            }
        }
    }

    static long RoundUp(long x, int to) => (x + to - 1) / to * to;
}
