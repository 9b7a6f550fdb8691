using PeftSharp.Kernels;

namespace PeftSharp.Compute;

/// <summary>
/// How a <see cref="ComputeContext"/> computes: thread count, GEMM implementation and SIMD strategy, 4-bit chunking.
/// Every field has a default that suits the machine; the CLI maps its flags (and environment variables) onto these.
/// </summary>
public sealed record ComputeOptions
{
    /// <summary>Threads the kernels use (default: all cores). Results are deterministic for a given count.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Which GEMM implementation float32 products use (default <see cref="GemmBackend.Auto"/>).</summary>
    public GemmBackend Gemm { get; init; } = GemmBackend.Auto;

    /// <summary>The managed GEMM's SIMD strategy; null picks the widest this CPU supports.</summary>
    public GemmSimd? Simd { get; init; }

    /// <summary>Output rows of a 4-bit weight dequantized per GEMM (cache-sized chunks; default 256).</summary>
    public int Quant4ChunkRows { get; init; } = 256;

    /// <summary>Run 4-bit chunk products on the managed GEMM even when OpenBLAS is the backend (default true):
    /// OpenBLAS's spinning workers compete with the .NET threads that dequantize between calls.</summary>
    public bool Quant4ManagedGemm { get; init; } = true;

    /// <summary>Use the AVX2 paths of the 4-bit and 8-bit optimizer kernels where the CPU has them (default true;
    /// false runs the scalar reference paths, for tests and measurements).</summary>
    public bool VectorKernels { get; init; } = true;

    /// <summary>Where training steps run: "cpu" (default), or "cuda" / "cuda:N" for the N-th CUDA device. A CUDA
    /// context is created by the PeftSharp.Cuda package (<c>CudaCompute.Create</c>); this library alone runs on the CPU.</summary>
    public string Device { get; init; } = "cpu";

    internal void Validate()
    {
        DeviceName.Parse(Device);
        if (Threads < 1) throw new PeftException($"threads must be ≥ 1, got {Threads}");
        if (Quant4ChunkRows < 1) throw new PeftException($"4-bit chunk rows must be ≥ 1, got {Quant4ChunkRows}");
        if (Simd is GemmSimd s && !Kernels.Gemm.IsSupported(s))
            throw new PeftException($"this CPU cannot run the {s} GEMM kernel");
        if (Gemm == GemmBackend.OpenBlas && !Kernels.Gemm.OpenBlasAvailable)
            throw new PeftException("the OpenBLAS GEMM backend was requested but libopenblas is not installed (Debian: apt-get install libopenblas0-pthread)");
    }
}
