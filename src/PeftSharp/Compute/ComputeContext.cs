using System.Runtime.Intrinsics.X86;
using PeftSharp.Kernels;
using PeftSharp.Kernels.Blas;
using PeftSharp.Tensors;

namespace PeftSharp.Compute;

/// <summary>
/// Where and how kernels run, created once and passed to model passes, inference sessions and optimizers: the thread
/// count, the GEMM implementation and SIMD strategy (chosen once, here), 4-bit chunking and a pool of scratch
/// buffers. Nothing about computation is a process-wide setting: two contexts with different settings can be used
/// side by side. A context is safe to share between threads.
/// </summary>
public sealed class ComputeContext : IDisposable
{
    readonly ParallelOptions _parallel;

    ComputeContext(ComputeOptions options, IDeviceTraining? device = null)
    {
        options.Validate();
        Device = device;
        Options = options;
        Threads = options.Threads;
        Simd = options.Simd ?? WidestSimd();
        ManagedPath = Gemm.ManagedPath(Simd);
        DensePath = options.Gemm switch
        {
            GemmBackend.OpenBlas => GemmPath.OpenBlas,
            GemmBackend.Auto when OpenBlas.Available && Simd != GemmSimd.Avx512 => GemmPath.OpenBlas,
            _ => ManagedPath,
        };
        Quant4Path = options.Quant4ManagedGemm ? ManagedPath : DensePath;
        UseAvx2 = options.VectorKernels && Avx2.IsSupported;
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = Threads };
        Backend = new CpuBackend(this);
    }

    /// <summary>A CPU context; <paramref name="options"/> null takes every default (all cores, widest SIMD).</summary>
    public static ComputeContext CreateCpu(ComputeOptions? options = null)
    {
        options ??= new ComputeOptions();
        if (DeviceName.Parse(options.Device).IsCuda)
            throw new PeftException($"device '{options.Device}': a CUDA context is created by PeftSharp.Cuda (CudaCompute.Create); CreateCpu runs on the CPU");
        return new(options);
    }

    /// <summary>A context whose training steps run on <paramref name="device"/> (host kernels still run model loading,
    /// quantization and everything outside the step). Used by device packages.</summary>
    internal static ComputeContext CreateWithDevice(ComputeOptions options, IDeviceTraining device) => new(options, device);

    /// <summary>The device that runs training steps, or null on the CPU.</summary>
    internal IDeviceTraining? Device { get; }

    /// <summary>The settings this context was created with.</summary>
    public ComputeOptions Options { get; }

    /// <summary>Threads the kernels use.</summary>
    public int Threads { get; }

    /// <summary>The managed GEMM's SIMD strategy.</summary>
    public GemmSimd Simd { get; }

    /// <summary>True when float32×float32 products go to the system OpenBLAS.</summary>
    public bool UsesOpenBlas => DensePath == GemmPath.OpenBlas;

    /// <summary>One line for logs and benchmark output, e.g. "cpu, 2 threads, gemm managed-avx512".</summary>
    public string Describe() => Device != null ? $"{Device.Describe()}; host {DescribeCpu()}" : DescribeCpu();

    string DescribeCpu() => $"cpu, {Threads} thread{(Threads == 1 ? "" : "s")}, gemm {PathName(DensePath)}" +
        (DensePath != ManagedPath ? $" (bf16/f16 operands: {PathName(ManagedPath)})" : "");

    internal static string PathName(GemmPath p) => p switch
    {
        GemmPath.ManagedAvx512 => "managed-avx512",
        GemmPath.ManagedAvx2 => "managed-avx2",
        GemmPath.ManagedPortable => "managed-portable",
        _ => "openblas",
    };

    /// <summary>The kernels, reached through one interface (a GPU backend is another implementation).</summary>
    internal IComputeBackend Backend { get; }

    /// <summary>Scratch buffers (GEMM packing, attention tiles, 4-bit dequantization), shared by all threads.</summary>
    internal BufferPool Buffers { get; } = new();

    internal GemmPath ManagedPath { get; }
    /// <summary>The path of float32×float32 products.</summary>
    internal GemmPath DensePath { get; }
    /// <summary>The path of the per-chunk products of 4-bit weights.</summary>
    internal GemmPath Quant4Path { get; }
    internal int Quant4ChunkRows => Options.Quant4ChunkRows;
    internal bool UseAvx2 { get; }

    internal GemmPath PathFor(DType a, DType b) => a == DType.F32 && b == DType.F32 ? DensePath : ManagedPath;

    internal ParallelOptions ParallelOptions => _parallel;

    /// <summary>Runs body(start, end) over [0, n) split into at most <see cref="Threads"/> contiguous ranges that
    /// depend only on n and the thread count, never on timing.</summary>
    internal void For(int n, Action<int, int> body, int minPerThread = 1)
    {
        int parts = Math.Min(Threads, Math.Max(1, n / Math.Max(1, minPerThread)));
        if (parts <= 1) { body(0, n); return; }
        Parallel.For(0, parts, _parallel, p =>
        {
            int start = (int)((long)n * p / parts), end = (int)((long)n * (p + 1) / parts);
            if (end > start) body(start, end);
        });
    }

    static GemmSimd WidestSimd() =>
        Gemm.IsSupported(GemmSimd.Avx512) ? GemmSimd.Avx512 : Gemm.IsSupported(GemmSimd.Avx2Fma) ? GemmSimd.Avx2Fma : GemmSimd.Portable;

    /// <summary>Frees the scratch pool.</summary>
    public void Dispose()
    {
        Buffers.Dispose();
        Device?.Dispose();
    }
}
