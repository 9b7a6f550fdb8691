using ILGPU;

namespace PeftSharp.Cuda.Kernels;

/// <summary>Row-major GEMM arguments: C (m,n) = alpha·op(A)·op(B) + beta·C with leading dimensions in elements.</summary>
internal readonly struct GemmArgs
{
    public readonly int M, N, K, Lda, Ldb, Ldc, TransA, TransB;
    public readonly float Alpha, Beta;

    public GemmArgs(bool transA, bool transB, int m, int n, int k, float alpha, int lda, int ldb, float beta, int ldc)
    {
        M = m; N = n; K = k; Lda = lda; Ldb = ldb; Ldc = ldc; TransA = transA ? 1 : 0; TransB = transB ? 1 : 0;
        Alpha = alpha; Beta = beta;
    }
}

/// <summary>
/// The ILGPU GEMM for accelerators without cuBLAS (ILGPU's CPU accelerator in CI): one thread per element of C,
/// a float32 dot product over k. beta = 0 never reads C (it may hold garbage or NaN).
/// </summary>
internal static class GemmKernels
{
    public static void Gemm(Index1D idx, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmArgs g)
    {
        int i = idx / g.N, j = idx - i * g.N;
        float acc = 0;
        for (int p = 0; p < g.K; p++)
        {
            float av = g.TransA == 0 ? a[(long)(int)i * g.Lda + p] : a[(long)p * g.Lda + i];
            float bv = g.TransB == 0 ? b[(long)p * g.Ldb + j] : b[(long)j * g.Ldb + p];
            acc += av * bv;
        }
        long ci = (long)(int)i * g.Ldc + j;
        c[ci] = g.Beta == 0f ? g.Alpha * acc : g.Alpha * acc + g.Beta * c[ci];
    }
}
