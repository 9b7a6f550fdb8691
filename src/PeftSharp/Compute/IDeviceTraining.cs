using PeftSharp.Data;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Training;

namespace PeftSharp.Compute;

/// <summary>
/// A device that runs whole training steps (PeftSharp.Cuda implements it): attached to a <see cref="ComputeContext"/>
/// by the package that created the context, asked by the <see cref="Trainer"/> for a step engine. The CPU context has none.
/// </summary>
internal interface IDeviceTraining : IDisposable
{
    /// <summary>One line for logs and benchmark output, e.g. "cuda:0 NVIDIA H200 (cuBLAS)".</summary>
    string Describe();

    /// <summary>An engine that uploads the model's frozen weights and the trainable parameters and runs steps on the device.</summary>
    IDeviceStepEngine CreateEngine(PeftModel model, TrainerOptions options, IReadOnlyList<Parameter> parameters, Optim.Optimizer hostOptimizer);
}

/// <summary>
/// One optimizer step on the device with the trainer's semantics (token-weighted loss over micro-batches, global-norm
/// clipping, AdamW), after which the host <see cref="Parameter"/> values (and, when asked, the optimizer state) are
/// copied back, so checkpoints and saved adapters need no change.
/// </summary>
internal interface IDeviceStepEngine : IDisposable
{
    (double Loss, double GradNorm, double Lr) Step(IReadOnlyList<Batch> batches, int step, LrSchedule schedule, string? lastCheckpoint);

    /// <summary>Bytes this engine holds on the device (weights, adapters, gradients, optimizer state, activations, scratch).</summary>
    long DeviceBytes { get; }

    /// <summary>Bytes of device memory in use as the driver reports it (all processes' view of this device), or -1.</summary>
    long DeviceUsedBytes { get; }
}
