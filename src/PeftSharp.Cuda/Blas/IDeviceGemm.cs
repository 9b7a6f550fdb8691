using ILGPU;

namespace PeftSharp.Cuda.Blas;

/// <summary>Row-major float32 GEMM on device views: C (m,n) = alpha·op(A)·op(B) + beta·C (beta = 0 never reads C).</summary>
internal interface IDeviceGemm
{
    /// <summary>"cublas" or "ilgpu-kernel".</summary>
    string Name { get; }

    void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, ArrayView<float> a, int lda, ArrayView<float> b, int ldb,
        float beta, ArrayView<float> c, int ldc);
}
