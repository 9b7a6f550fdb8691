namespace PeftSharp.Kernels.Blas;

/// <summary>
/// One SIMD strategy of the managed GEMM (one struct per strategy, chosen once at start-up). The driver
/// <see cref="PackedGemm{TKernel}"/> is generic over it, so every call to the micro-kernel is direct and inlinable.
/// Block sizes: an MR×kc sliver of A and a kc×NR sliver of B meet in registers; an MC×KC block of packed A stays in
/// L2 while a KC×NR panel of packed B stays in L1; the KC×NC packed B block lives in L2/L3.
/// </summary>
unsafe interface IMicroKernel
{
    static abstract int MR { get; }
    static abstract int NR { get; }
    static abstract int MC { get; }
    static abstract int KC { get; }
    static abstract int NC { get; }

    /// <summary>
    /// C[0..mr, 0..nr) = alpha · Σₚ a[p·MR + i] · b[p·NR + j] + beta · C (beta = 0: C is not read).
    /// a: packed A sliver (kc, MR); b: packed B sliver (kc, NR); c: row-major with leading dimension ldc.
    /// </summary>
    static abstract void Run(int kc, float* a, float* b, float* c, long ldc, int mr, int nr, float alpha, float beta);

    /// <summary>
    /// The same tile from unpacked float32 operands: op(A)[i,p] = a[i·rsA + p·csA], op(B)[p,j] = b[p·csB + j]
    /// (all NR columns of b must be readable; rows ≥ mr are not read).
    /// </summary>
    static abstract void RunStrided(int kc, float* a, long rsA, long csA, float* b, long csB, float* c, long ldc, int mr, int nr, float alpha, float beta);
}
