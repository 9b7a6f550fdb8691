using PeftSharp.Quantization;

namespace PeftSharp.Cuda;

/// <summary>
/// A bitsandbytes 4-bit weight (NF4/FP4) on the device as the CPU holds it: packed codes, and float32 absmax per block
/// or (double quantization) 8-bit absmax codes, nested float32 absmax, the nested map and offset. Dequantized per use
/// into a reused float32 buffer before the GEMM.
/// </summary>
internal sealed class DeviceQuant4 : IDisposable
{
    public int Rows { get; }
    public int Cols { get; }
    public int BlockSize { get; }
    public DeviceArray<byte> Packed { get; }
    public DeviceArray<float> Map { get; }
    public DeviceArray<float>? Absmax { get; }
    public DeviceArray<byte>? QuantizedAbsmax { get; }
    public DeviceArray<float>? NestedAbsmax { get; }
    public DeviceArray<float>? NestedMap { get; }
    public float NestedOffset { get; }

    public unsafe DeviceQuant4(GpuDevice device, Quantized4Bit q)
    {
        Rows = q.Rows;
        Cols = q.Cols;
        BlockSize = q.BlockSize;
        Packed = device.Upload(new ReadOnlySpan<byte>(q.PackedCodes, checked((int)q.PackedByteLength)));
        Map = device.Upload<float>(q.QuantMap);
        if (q.DoubleQuant)
        {
            QuantizedAbsmax = device.Upload<byte>(q.QuantizedAbsmax!);
            NestedAbsmax = device.Upload<float>(q.NestedAbsmax!);
            NestedMap = device.Upload<float>(q.NestedQuantMap!);
            NestedOffset = q.NestedOffset;
        }
        else Absmax = device.Upload<float>(q.Absmax!);
    }

    public long Bytes => Packed.Bytes + Map.Bytes + (Absmax?.Bytes ?? 0) + (QuantizedAbsmax?.Bytes ?? 0) + (NestedAbsmax?.Bytes ?? 0) + (NestedMap?.Bytes ?? 0);

    public void Dispose()
    {
        Packed.Dispose(); Map.Dispose(); Absmax?.Dispose(); QuantizedAbsmax?.Dispose(); NestedAbsmax?.Dispose(); NestedMap?.Dispose();
    }
}
