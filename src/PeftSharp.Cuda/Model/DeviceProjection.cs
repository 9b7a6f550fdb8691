using ILGPU;
using PeftSharp.Cuda.Blas;

namespace PeftSharp.Cuda;

/// <summary>
/// A frozen projection y = x·Wᵀ on the device, W (Out, In) dense (BF16/F32) or 4-bit, with an optional LoRA adapter:
/// y += s·(x·Aᵀ)·Bᵀ, rank-r side first (B·A is never formed). W is widened or dequantized into the shared scratch
/// right before each GEMM (the scratch holds one projection's float32 weight at a time).
/// </summary>
internal sealed class DeviceProjection : IDisposable
{
    readonly DeviceMatrix? _dense;
    readonly DeviceQuant4? _quant;

    public string Name { get; }
    public int In { get; }
    public int Out { get; }
    public DeviceAdapter? Adapter { get; }
    public long WeightBytes => _dense?.Bytes ?? _quant!.Bytes;

    public DeviceProjection(string name, DeviceMatrix? dense, DeviceQuant4? quant, DeviceAdapter? adapter)
    {
        Name = name;
        _dense = dense; _quant = quant;
        Out = dense?.Rows ?? quant!.Rows;
        In = dense?.Cols ?? quant!.Cols;
        Adapter = adapter;
    }

    /// <summary>W as float32 (Out, In): the F32 storage, or widened / dequantized into <paramref name="scratch"/>.</summary>
    public ArrayView<float> WeightF32(DeviceKernels k, ArrayView<float> scratch)
    {
        if (_dense != null) return _dense.RowsF32(k, 0, Out, scratch);
        long count = (long)Out * In;
        var dst = scratch.SubView(0, count);
        k.Dequantize4(_quant!, 0, count, dst);
        return dst;
    }

    /// <summary>y (n,Out) = x (n,In)·Wᵀ (+ s·xa·Bᵀ with xa (n,r) = x·Aᵀ saved for the backward).</summary>
    public void Forward(DeviceContextOps ops, ArrayView<float> x, ArrayView<float> y, int n, ArrayView<float> xa)
    {
        var w = WeightF32(ops.Kernels, ops.Scratch);
        ops.Gemm.Gemm(false, true, n, Out, In, 1f, x, In, w, In, 0f, y, Out);
        if (Adapter is not { } ad) return;
        int r = ad.Rank;
        ops.Gemm.Gemm(false, true, n, r, In, 1f, x, In, ad.A.Value.View, In, 0f, xa, r);
        ops.Gemm.Gemm(false, true, n, Out, r, ad.Scaling, xa, r, ad.B.Value.View, r, 1f, y, Out);
    }

    /// <summary>
    /// dx (n,In) += dy·W (+ the adapter's path); dB += s·dyᵀ·xa, dA += dxaᵀ·x with dxa = s·dy·B (n,r) in
    /// <paramref name="dxa"/>. x is the forward's input, xa what the forward saved.
    /// </summary>
    public void Backward(DeviceContextOps ops, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> dx, int n, ArrayView<float> xa, ArrayView<float> dxa)
    {
        var w = WeightF32(ops.Kernels, ops.Scratch);
        ops.Gemm.Gemm(false, false, n, In, Out, 1f, dy, Out, w, In, 1f, dx, In);
        if (Adapter is not { } ad) return;
        int r = ad.Rank;
        float s = ad.Scaling;
        ops.Gemm.Gemm(true, false, Out, r, n, s, dy, Out, xa, r, 1f, ad.B.Grad.View, r);
        ops.Gemm.Gemm(false, false, n, r, Out, s, dy, Out, ad.B.Value.View, r, 0f, dxa, r);
        ops.Gemm.Gemm(true, false, r, In, n, 1f, dxa, r, x, In, 1f, ad.A.Grad.View, In);
        ops.Gemm.Gemm(false, false, n, In, r, 1f, dxa, r, ad.A.Value.View, In, 1f, dx, In);
    }

    public void Dispose()
    {
        _dense?.Dispose();
        _quant?.Dispose();
        Adapter?.Dispose();
    }
}

/// <summary>What a projection needs to run: the kernels, the GEMM and the shared weight scratch.</summary>
internal readonly record struct DeviceContextOps(DeviceKernels Kernels, IDeviceGemm Gemm, ArrayView<float> Scratch);
