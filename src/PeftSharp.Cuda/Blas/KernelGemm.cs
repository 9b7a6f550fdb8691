using ILGPU;
using PeftSharp.Cuda.Kernels;

namespace PeftSharp.Cuda.Blas;

/// <summary>The ILGPU GEMM kernel (<see cref="GemmKernels"/>): ILGPU's CPU accelerator, or a CUDA device without cuBLAS.</summary>
internal sealed class KernelGemm(GpuDevice device) : IDeviceGemm
{
    public string Name => "ilgpu-kernel";

    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, ArrayView<float> a, int lda, ArrayView<float> b, int ldb,
        float beta, ArrayView<float> c, int ldc)
        => device.Kernels.Gemm(a, b, c, new GemmArgs(transA, transB, m, n, k, alpha, lda, ldb, beta, ldc));
}
