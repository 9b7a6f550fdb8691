using PeftSharp.Compute;
using PeftSharp.Nn;
using PeftSharp.Optim;
using PeftSharp.Peft;
using PeftSharp.Training;

namespace PeftSharp.Cuda;

/// <summary>The device side of a CUDA <see cref="ComputeContext"/>: opens the accelerator once, makes step engines on it.</summary>
internal sealed class CudaTraining(GpuDevice device) : IDeviceTraining
{
    public GpuDevice Device { get; } = device;

    public string Describe() => $"{Device.Name} (gemm {Device.Gemm.Name})";

    public IDeviceStepEngine CreateEngine(PeftModel model, TrainerOptions options, IReadOnlyList<Parameter> parameters, Optimizer hostOptimizer)
        => new CudaStepEngine(Device, model, options, parameters, hostOptimizer);

    public void Dispose() => Device.Dispose();
}
