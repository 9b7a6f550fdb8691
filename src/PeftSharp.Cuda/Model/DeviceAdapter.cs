using PeftSharp.Peft;

namespace PeftSharp.Cuda;

/// <summary>
/// One LoRA adapter of one projection on the device: A (r, in), B (out, r), their gradients and AdamW moments, all
/// float32; the host <see cref="LoraAdapter"/> is the source at upload and receives the values back after each step.
/// </summary>
internal sealed class DeviceAdapter : IDisposable
{
    public LoraAdapter Host { get; }
    public int Rank => Host.Rank;
    public float Scaling => Host.Scaling;
    public DeviceParameter A { get; }
    public DeviceParameter B { get; }

    public DeviceAdapter(GpuDevice device, LoraAdapter host)
    {
        Host = host;
        A = new DeviceParameter(device, host.A);
        B = new DeviceParameter(device, host.B);
    }

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}

/// <summary>A trainable float32 tensor on the device with its gradient and AdamW state (m, v), mirroring a host parameter.</summary>
internal sealed class DeviceParameter : IDisposable
{
    public Nn.Parameter Host { get; }
    public DeviceArray<float> Value { get; }
    public DeviceArray<float> Grad { get; }
    public DeviceArray<float> M { get; }
    public DeviceArray<float> V { get; }
    public long Count => Value.Length;

    public DeviceParameter(GpuDevice device, Nn.Parameter host)
    {
        Host = host;
        Value = device.Upload<float>(host.Value.Floats);
        Grad = device.Allocate<float>(Value.Length);
        M = device.Allocate<float>(Value.Length);
        V = device.Allocate<float>(Value.Length);
    }

    public long Bytes => Value.Bytes + Grad.Bytes + M.Bytes + V.Bytes;

    public void Dispose()
    {
        Value.Dispose(); Grad.Dispose(); M.Dispose(); V.Dispose();
    }
}
