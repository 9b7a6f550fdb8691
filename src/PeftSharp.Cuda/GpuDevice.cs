using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using PeftSharp.Compute;
using PeftSharp.Cuda.Blas;
using PeftSharp.Cuda.Kernels;

namespace PeftSharp.Cuda;

/// <summary>
/// One accelerator and what runs on it: the ILGPU context, the loaded kernels, the GEMM (cuBLAS on CUDA, the ILGPU
/// kernel elsewhere) and the count of bytes this process allocated there. A CUDA device, or ILGPU's CPU accelerator
/// (the same kernels run as .NET code: tests and CI without a GPU).
/// </summary>
internal sealed class GpuDevice : IDisposable
{
    readonly Context _context;
    long _allocated;

    GpuDevice(Context context, Accelerator accelerator, string name, bool preferKernelGemm)
    {
        _context = context;
        Accelerator = accelerator;
        Name = name;
        try { Kernels = new DeviceKernels(accelerator); }
        catch (Exception e) when (e is not PeftException)
        {
            // An unsupported GPU architecture or driver shows here first: one clear line, not ILGPU's stack.
            throw new PeftException($"ILGPU could not compile the device kernels for {name} ({e.GetType().Name}: {e.Message.Split('\n')[0]})");
        }
        Gemm = accelerator is CudaAccelerator cuda && !preferKernelGemm
            ? CuBlasGemm.Create(cuda, this)
            : new KernelGemm(this);
    }

    public Accelerator Accelerator { get; }
    public DeviceKernels Kernels { get; }
    public IDeviceGemm Gemm { get; }
    public string Name { get; }
    public bool IsCuda => Accelerator is CudaAccelerator;

    /// <summary>Bytes of device buffers this process holds now.</summary>
    public long AllocatedBytes => Interlocked.Read(ref _allocated);

    internal void NoteAllocated(long bytes) => Interlocked.Add(ref _allocated, bytes);

    /// <summary>
    /// Opens <paramref name="device"/> (cuda:N), or ILGPU's CPU accelerator when <paramref name="device"/> is the CPU
    /// (tests). A machine without a CUDA device (or without the NVIDIA driver) gets a <see cref="PeftException"/>
    /// that says so.
    /// </summary>
    public static GpuDevice Open(DeviceName device, bool kernelGemm = false)
    {
        if (!device.IsCuda)
        {
            // One simulated multiprocessor with single-thread groups: our kernels use no shared memory or barriers, and on a
            // busy CI machine one worker beats waking a thread per simulated lane for every launch.
            Context ctx;
            try { ctx = Context.Create(b => b.CPU(new CPUDevice(2, 1, 1)).EnableAlgorithms()); }
            catch (Exception e) when (e is TypeInitializationException or MissingMethodException or NotSupportedException)
            {
                throw new PeftException($"ILGPU could not start ({e.GetType().Name}: {(e.InnerException ?? e).Message})");
            }
            try { return new GpuDevice(ctx, ctx.CreateCPUAccelerator(0), "ilgpu-cpu", preferKernelGemm: true); }
            catch { ctx.Dispose(); throw; }
        }
        Context context;
        try { context = Context.Create(b => b.Cuda().EnableAlgorithms()); }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or NotSupportedException or CudaException or InvalidOperationException)
        {
            var inner = e;
            while (inner.InnerException != null) inner = inner.InnerException;
            throw NoCuda(device, $"the CUDA driver could not be used ({inner.GetType().Name}: {inner.Message})");
        }
        try
        {
            var devices = context.GetCudaDevices();
            if (devices.Count == 0) throw NoCuda(device, "no CUDA device found (is the NVIDIA driver installed and libcuda.so.1 loadable?)");
            if (device.Index >= devices.Count)
                throw new PeftException($"--device {device}: this machine has {devices.Count} CUDA device{(devices.Count == 1 ? "" : "s")} (cuda:0 … cuda:{devices.Count - 1})");
            var accel = context.CreateCudaAccelerator(device.Index);
            return new GpuDevice(context, accel, $"{device} {accel.Name}", kernelGemm);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    static PeftException NoCuda(DeviceName device, string why) => new($"--device {device}: {why}; use --device cpu");

    /// <summary>A zeroed device array of <paramref name="length"/> elements.</summary>
    public DeviceArray<T> Allocate<T>(long length) where T : unmanaged => new(this, length);

    /// <summary>A device copy of <paramref name="data"/>.</summary>
    public DeviceArray<T> Upload<T>(ReadOnlySpan<T> data) where T : unmanaged
    {
        var a = new DeviceArray<T>(this, data.Length);
        a.Upload(data);
        return a;
    }

    /// <summary>Waits for every queued kernel and copy.</summary>
    public void Synchronize() => Accelerator.Synchronize();

    /// <summary>(free, total) bytes of device memory as the driver reports them; (-1, -1) off CUDA.</summary>
    public (long Free, long Total) MemoryInfo() => IsCuda ? CudaMemory.Info(Accelerator) : (-1, -1);

    public void Dispose()
    {
        (Gemm as IDisposable)?.Dispose();
        Accelerator.Dispose();
        _context.Dispose();
    }
}
