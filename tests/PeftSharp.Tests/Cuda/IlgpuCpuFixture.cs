using PeftSharp.Compute;
using PeftSharp.Cuda;

namespace PeftSharp.Tests.Cuda;

/// <summary>One ILGPU CPU accelerator (kernels compiled once) and a CPU context, shared by the device kernel tests.</summary>
public sealed class IlgpuCpuFixture : IDisposable
{
    internal GpuDevice Device { get; } = GpuDevice.Open(DeviceName.Cpu);
    internal ComputeContext Cpu { get; } = ComputeContext.CreateCpu(new ComputeOptions { Threads = 2 });
    internal KernelChecks Checks => new(Device, Cpu);

    public void Dispose()
    {
        Device.Dispose();
        Cpu.Dispose();
    }
}
