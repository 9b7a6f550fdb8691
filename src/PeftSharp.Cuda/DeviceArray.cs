using ILGPU;
using ILGPU.Runtime;

namespace PeftSharp.Cuda;

/// <summary>
/// A 1-D buffer on the device (the device-side twin of a host tensor): allocated zeroed, counted in
/// <see cref="GpuDevice.AllocatedBytes"/>, copied to and from host spans explicitly — kernels never see host memory.
/// </summary>
internal sealed class DeviceArray<T> : IDisposable where T : unmanaged
{
    readonly GpuDevice _device;
    MemoryBuffer1D<T, Stride1D.Dense>? _buffer;

    public DeviceArray(GpuDevice device, long length)
    {
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length));
        _device = device;
        Length = length;
        _buffer = device.Accelerator.Allocate1D<T>(Math.Max(1, length));
        _buffer.MemSetToZero();
        device.NoteAllocated(Bytes);
    }

    public long Length { get; }
    public unsafe long Bytes => Math.Max(1, Length) * sizeof(T);

    /// <summary>The whole buffer as a kernel argument.</summary>
    public ArrayView<T> View => (_buffer ?? throw new ObjectDisposedException(nameof(DeviceArray<T>))).View;

    /// <summary>Elements [offset, offset + length).</summary>
    public ArrayView<T> Slice(long offset, long length) => View.SubView(offset, length);

    public void Upload(ReadOnlySpan<T> data)
    {
        if (data.Length != Length) throw new ArgumentException($"upload of {data.Length} elements into a device array of {Length}");
        if (data.Length > 0) View.SubView(0, Length).CopyFromCPU(data);
    }

    public void Download(Span<T> data)
    {
        if (data.Length != Length) throw new ArgumentException($"download of a device array of {Length} elements into {data.Length}");
        if (data.Length > 0) View.SubView(0, Length).CopyToCPU(data);
    }

    public T[] ToArray()
    {
        var a = new T[Length];
        Download(a);
        return a;
    }

    public void Zero() => _buffer!.MemSetToZero();

    public void Dispose()
    {
        if (_buffer == null) return;
        _buffer.Dispose();
        _buffer = null;
        _device.NoteAllocated(-Bytes);
    }
}
