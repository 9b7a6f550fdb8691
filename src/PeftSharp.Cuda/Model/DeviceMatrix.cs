using ILGPU;
using PeftSharp.Tensors;

namespace PeftSharp.Cuda;

/// <summary>
/// A dense frozen matrix (rows, cols) on the device in its storage dtype: BF16 stays BF16 (widened per use into a
/// reused float32 buffer), F32 stays F32 (used in place); F16 is widened to F32 once at upload.
/// </summary>
internal sealed class DeviceMatrix : IDisposable
{
    readonly DeviceArray<ushort>? _bf16;
    readonly DeviceArray<float>? _f32;

    public int Rows { get; }
    public int Cols { get; }
    public DType StorageType => _bf16 != null ? DType.BF16 : DType.F32;
    public long Bytes => _bf16?.Bytes ?? _f32!.Bytes;

    public ArrayView<ushort>? Bf16 => _bf16?.View;
    public ArrayView<float>? F32 => _f32?.View;

    public unsafe DeviceMatrix(GpuDevice device, Tensor t)
    {
        if (t.Rank != 2) throw new ArgumentException($"a device matrix needs a 2-D tensor, got {t.ShapeString}");
        Rows = t.Shape[0];
        Cols = t.Shape[1];
        switch (t.DType)
        {
            case DType.BF16:
                _bf16 = device.Upload(new ReadOnlySpan<ushort>(t.Data, checked((int)t.ElementCount)));
                break;
            case DType.F32:
                _f32 = device.Upload<float>(t.Floats);
                break;
            default:
                var wide = new float[t.ElementCount];
                DTypeConvert.ToFloat(t.Data, t.DType, wide);
                _f32 = device.Upload<float>(wide);
                break;
        }
    }

    /// <summary>Rows [row0, row0 + rows) as float32: the F32 storage itself, or BF16 widened into <paramref name="scratch"/>.</summary>
    public ArrayView<float> RowsF32(DeviceKernels k, int row0, int rows, ArrayView<float> scratch)
    {
        long start = (long)row0 * Cols, count = (long)rows * Cols;
        if (_f32 != null) return _f32.Slice(start, count);
        var dst = scratch.SubView(0, count);
        k.WidenBf16(_bf16!.Slice(start, count), dst, count);
        return dst;
    }

    public void Dispose()
    {
        _bf16?.Dispose();
        _f32?.Dispose();
    }
}
