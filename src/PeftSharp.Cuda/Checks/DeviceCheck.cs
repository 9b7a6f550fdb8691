using PeftSharp.Compute;

namespace PeftSharp.Cuda;

/// <summary>
/// The device self-check: every kernel and whole LoRA / QLoRA steps against the CPU, on the named device. This is the
/// GPU's test suite where no .NET SDK exists (`peft device check --device cuda`); CI runs the same checks on ILGPU's
/// CPU accelerator through xUnit.
/// </summary>
public static class DeviceCheck
{
    /// <summary>Runs every check on <paramref name="device"/> ("cuda", "cuda:N", or "cpu" for ILGPU's CPU accelerator),
    /// reporting each to <paramref name="report"/>; returns true when all passed. <paramref name="only"/>: "kernels",
    /// "steps", or null for both.</summary>
    public static bool Run(string device, Action<string, double, double, bool> report, string? only = null)
    {
        if (only is not (null or "kernels" or "steps")) throw new PeftException($"--only '{only}': expected kernels or steps");
        var name = DeviceName.Parse(device);
        using var cpu = ComputeContext.CreateCpu(new ComputeOptions { Threads = Math.Min(4, Environment.ProcessorCount) });
        bool ok = true;
        if (only != "steps")
        {
            using var dev = GpuDevice.Open(name);
            foreach (var check in new KernelChecks(dev, cpu).All())
            {
                var r = check();
                report(r.Name, r.Error, r.Tolerance, r.Passed);
                ok &= r.Passed;
            }
        }
        if (only == "kernels") return ok;
        var opts = new ComputeOptions { Threads = cpu.Threads };
        foreach (var (label, qlora, window) in new[] { ("train step lora", false, (int?)null), ("train step qlora nf4", true, null), ("train step lora, sliding window 5", false, 5) })
        {
            using var ctx = name.IsCuda ? CudaCompute.Create(opts with { Device = name.ToString() }) : CudaCompute.CreateOnIlgpuCpu(opts);
            var r = StepChecks.Compare(label, ctx, cpu, StepChecks.TinyLlama(window), qlora);
            report(r.Name, r.Error, r.Tolerance, r.Passed);
            ok &= r.Passed;
        }
        return ok;
    }
}
