using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace PeftSharp.Cuda.Blas;

/// <summary>
/// cuBLAS SGEMM (float32 operands, float32 accumulation) on the accelerator's stream, loaded at run time
/// (libcublas.so.12, .so.11 or .so — PyTorch's wheels ship it under site-packages/nvidia/cublas/lib, which
/// LD_LIBRARY_PATH can name). Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: the operands swap.
/// With <c>PEFTSHARP_CUBLAS_TF32=1</c> the handle may use TF32 tensor cores (float32 accumulation still).
/// </summary>
internal sealed unsafe class CuBlasGemm : IDeviceGemm, IDisposable
{
    static readonly string[] LibraryNames = ["libcublas.so.12", "libcublas.so.11", "libcublas.so", "cublas64_12.dll", "cublas64_11.dll"];

    readonly nint _lib;
    readonly nint _handle;
    readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int> _sgemm;
    readonly delegate* unmanaged<nint, int> _destroy;

    public string Name { get; }

    CuBlasGemm(nint lib, string name, CudaAccelerator accelerator, bool tf32)
    {
        _lib = lib;
        var create = (delegate* unmanaged<nint*, int>)NativeLibrary.GetExport(lib, "cublasCreate_v2");
        var setStream = (delegate* unmanaged<nint, nint, int>)NativeLibrary.GetExport(lib, "cublasSetStream_v2");
        var setMath = (delegate* unmanaged<nint, int, int>)NativeLibrary.GetExport(lib, "cublasSetMathMode");
        _sgemm = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int>)
            NativeLibrary.GetExport(lib, "cublasSgemm_v2");
        _destroy = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(lib, "cublasDestroy_v2");
        accelerator.Bind();
        nint h;
        Check(create(&h), "cublasCreate");
        _handle = h;
        Check(setStream(h, ((CudaStream)accelerator.DefaultStream).StreamPtr), "cublasSetStream");
        // CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3
        Check(setMath(h, tf32 ? 3 : 0), "cublasSetMathMode");
        Name = tf32 ? $"cublas-tf32 ({name})" : $"cublas ({name})";
    }

    /// <summary>cuBLAS when it loads; otherwise the ILGPU kernel, with the reason on stderr (a run still works, slower).</summary>
    public static IDeviceGemm Create(CudaAccelerator accelerator, GpuDevice device)
    {
        foreach (var name in LibraryNames)
        {
            if (!NativeLibrary.TryLoad(name, out var lib)) continue;
            bool tf32 = Environment.GetEnvironmentVariable("PEFTSHARP_CUBLAS_TF32") == "1";
            return new CuBlasGemm(lib, name, accelerator, tf32);
        }
        Console.Error.WriteLine("warning: cuBLAS (libcublas.so.12/.11) was not found; GEMMs run on the ILGPU kernel (slow). " +
                                "Put the directory of libcublas.so.12 on LD_LIBRARY_PATH.");
        return new KernelGemm(device);
    }

    static void Check(int status, string what)
    {
        if (status != 0) throw new PeftException($"{what} failed with cuBLAS status {status}");
    }

    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, ArrayView<float> a, int lda, ArrayView<float> b, int ldb,
        float beta, ArrayView<float> c, int ldc)
    {
        if (m == 0 || n == 0) return;
        // CUBLAS_OP_N = 0, CUBLAS_OP_T = 1
        Check(_sgemm(_handle, transB ? 1 : 0, transA ? 1 : 0, n, m, k, &alpha, b.LoadEffectiveAddressAsPtr(), ldb,
            a.LoadEffectiveAddressAsPtr(), lda, &beta, c.LoadEffectiveAddressAsPtr(), ldc), "cublasSgemm");
    }

    public void Dispose()
    {
        if (_handle != 0) _destroy(_handle);
        NativeLibrary.Free(_lib);
    }
}
