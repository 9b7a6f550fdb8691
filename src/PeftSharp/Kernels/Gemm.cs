using PeftSharp.Tensors;

namespace PeftSharp.Kernels;

/// <summary>
/// C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C, all row-major. op(X) = X or Xᵀ.
/// The orientations the layers use: "nn" (dx = dy·W), "nt" (y = x·Wᵀ), "tn" (dW = dyᵀ·x).
/// A and B may be F32, BF16 or F16 (widened to float32 while packing); C is float32.
/// PLACEHOLDER: naive loops; the packed AVX2 kernel and OpenBLAS path replace the body, not the signature.
/// </summary>
public static unsafe class Gemm
{
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        float alpha, in MatrixView a, in MatrixView b, float beta, float* c, int ldc)
    {
        var av = a; var bv = b;
        Threads.For(m, (i0, i1) =>
        {
            for (int i = i0; i < i1; i++)
                for (int j = 0; j < n; j++)
                {
                    float s = 0;
                    for (int p = 0; p < k; p++)
                        s += (transA ? av[p, i] : av[i, p]) * (transB ? bv[j, p] : bv[p, j]);
                    float* cij = c + (long)i * ldc + j;
                    *cij = alpha * s + (beta == 0 ? 0 : beta * *cij);
                }
        });
    }
}
