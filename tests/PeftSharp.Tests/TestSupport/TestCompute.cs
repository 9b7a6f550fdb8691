using PeftSharp.Compute;

namespace PeftSharp.Tests.TestSupport;

/// <summary>The compute context tests share (all cores, widest SIMD): contexts are immutable and thread-safe.</summary>
internal static class TestCompute
{
    public static ComputeContext Cpu { get; } = ComputeContext.CreateCpu();

    /// <summary>A context with other settings (thread count, SIMD, 4-bit chunking).</summary>
    public static ComputeContext With(ComputeOptions options) => ComputeContext.CreateCpu(options);
}
