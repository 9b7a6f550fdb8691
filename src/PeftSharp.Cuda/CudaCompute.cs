using PeftSharp.Compute;

namespace PeftSharp.Cuda;

/// <summary>
/// Creates compute contexts whose training steps run on a CUDA device: <c>CudaCompute.Create(new ComputeOptions { Device = "cuda:0" })</c>,
/// then use the context as any other (a <see cref="Training.Trainer"/> made with it trains on the GPU; loading and
/// quantization stay on the host). A machine without a CUDA device gets a <see cref="PeftException"/> saying so.
/// </summary>
public static class CudaCompute
{
    /// <summary>A context for <paramref name="options"/>: the CPU for Device = "cpu", the named CUDA device otherwise.</summary>
    public static ComputeContext Create(ComputeOptions options)
    {
        var name = DeviceName.Parse(options.Device);
        if (!name.IsCuda) return ComputeContext.CreateCpu(options);
        var device = GpuDevice.Open(name);
        try { return ComputeContext.CreateWithDevice(options, new CudaTraining(device)); }
        catch { device.Dispose(); throw; }
    }

    /// <summary>A context whose steps run on ILGPU's CPU accelerator — the device code path without a GPU (tests, CI).</summary>
    internal static ComputeContext CreateOnIlgpuCpu(ComputeOptions options) =>
        ComputeContext.CreateWithDevice(options with { Device = "cpu" }, new CudaTraining(GpuDevice.Open(DeviceName.Cpu)));
}
