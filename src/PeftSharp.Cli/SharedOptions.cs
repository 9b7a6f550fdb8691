using System.CommandLine;
using PeftSharp.Compute;
using PeftSharp.Kernels;

namespace PeftSharp.Cli;

/// <summary>Options every compute command takes, and the compute context they give.</summary>
internal static class SharedOptions
{
    public static Option<int> Threads() => new("--threads")
    {
        Description = "compute threads (default: all cores)",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    };

    public static Option<string> Device() => new("--device")
    {
        Description = "where training steps run: cpu, cuda or cuda:N (an NVIDIA GPU, through PeftSharp.Cuda)",
        DefaultValueFactory = _ => "cpu",
    };

    /// <summary>The compute context for --threads and --device: a CUDA device when one is named (the host threads still
    /// load and quantize the model), else the CPU.</summary>
    public static ComputeContext Compute(int threads, string device)
    {
        var cpu = Compute(threads);
        if (!DeviceName.Parse(device).IsCuda) return cpu;
        var options = cpu.Options with { Device = device };
        cpu.Dispose();
        return PeftSharp.Cuda.CudaCompute.Create(options);
    }

    /// <summary>
    /// The command's compute context: --threads, and the CLI's measurement switches from the environment
    /// (PEFTSHARP_GEMM=auto|managed|openblas, PEFTSHARP_GEMM_SIMD=avx512|avx2|portable, PEFTSHARP_Q4_CHUNK_ROWS=N,
    /// PEFTSHARP_Q4_GEMM=auto). The library itself reads no environment variable.
    /// </summary>
    public static ComputeContext Compute(int threads)
    {
        CheckThreads(threads);
        string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v.Trim() : null;
        GemmSimd? simd = Env("PEFTSHARP_GEMM_SIMD")?.ToLowerInvariant() switch
        {
            null => null,
            "avx512" => GemmSimd.Avx512,
            "avx2" => GemmSimd.Avx2Fma,
            "portable" => GemmSimd.Portable,
            var v => throw new PeftException($"environment variable PEFTSHARP_GEMM_SIMD='{v}': expected avx512, avx2 or portable"),
        };
        int chunk = 256;
        if (Env("PEFTSHARP_Q4_CHUNK_ROWS") is { } c && (!int.TryParse(c, out chunk) || chunk < 1))
            throw new PeftException($"environment variable PEFTSHARP_Q4_CHUNK_ROWS='{c}': expected a positive integer");
        return ComputeContext.CreateCpu(new ComputeOptions
        {
            Threads = threads,
            Gemm = Gemm.ParseBackend(Env("PEFTSHARP_GEMM")),
            Simd = simd,
            Quant4ChunkRows = chunk,
            Quant4ManagedGemm = !string.Equals(Env("PEFTSHARP_Q4_GEMM"), "auto", StringComparison.OrdinalIgnoreCase),
        });
    }

    /// <summary>1 … 8 × the cores: 0 or a negative count is a mistake, and far more threads than cores only adds
    /// switching and per-thread buffers.</summary>
    public static int CheckThreads(int threads)
    {
        int max = MaxThreads;
        if (threads < 1 || threads > max)
            throw new PeftException($"--threads: must be between 1 and {max} (8 × the {Environment.ProcessorCount} cores), got {threads}");
        return threads;
    }

    public static int MaxThreads => 8 * Environment.ProcessorCount;
}
