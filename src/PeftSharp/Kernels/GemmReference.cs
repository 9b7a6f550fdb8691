using PeftSharp.Tensors;

namespace PeftSharp.Kernels;

/// <summary>
/// The naive GEMM the tests trust: C = alpha·op(A)·op(B) + beta·C with every dot product accumulated in double.
/// beta = 0 overwrites C (NaN garbage in C is ignored), like BLAS.
/// </summary>
internal static unsafe class GemmReference
{
    // op(A) (m,k), op(B) (k,n), C (m,n) with leading dimension ldc
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        float alpha, in MatrixView a, in MatrixView b, float beta, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (double)(transA ? a[p, i] : a[i, p]) * (transB ? b[j, p] : b[p, j]);
                float* cij = c + (long)i * ldc + j;
                *cij = (float)(alpha * s + (beta == 0 ? 0 : (double)beta * *cij));
            }
    }

    /// <summary>The same product returned in double precision (before rounding to C), for error measurement.</summary>
    public static double[] MultiplyDouble(bool transA, bool transB, int m, int n, int k,
        float alpha, in MatrixView a, in MatrixView b, float beta, float* c, int ldc)
    {
        var r = new double[(long)m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (double)(transA ? a[p, i] : a[i, p]) * (transB ? b[j, p] : b[p, j]);
                r[(long)i * n + j] = alpha * s + (beta == 0 ? 0 : (double)beta * c[(long)i * ldc + j]);
            }
        return r;
    }
}
