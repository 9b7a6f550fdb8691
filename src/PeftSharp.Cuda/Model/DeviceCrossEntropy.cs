using ILGPU;
using PeftSharp.Cuda.Kernels;

namespace PeftSharp.Cuda;

/// <summary>
/// The LM head fused with softmax cross-entropy on the device, chunked twice so that neither (n, V) logits nor a
/// float32 copy of the head ever exist: rows in chunks whose logits fit <see cref="LogitsBudget"/>, and the head
/// widened into the weight scratch a vocabulary chunk at a time. dHidden += dlogits · W; the head gets no gradient.
/// </summary>
internal sealed class DeviceCrossEntropy : IDisposable
{
    /// <summary>Most floats of one logits chunk (rows × vocab): 64 Mi floats = 256 MiB.</summary>
    public const long LogitsBudget = 64L << 20;

    readonly GpuDevice _dev;
    readonly DeviceArray<float> _logits, _rowLoss;
    readonly int _rows, _vocab, _vocabChunk;

    public DeviceCrossEntropy(GpuDevice device, int tokens, int vocab, int vocabChunk, long logitsBudget = LogitsBudget)
    {
        _dev = device;
        _vocab = vocab;
        _vocabChunk = vocabChunk;
        _rows = (int)Math.Clamp(logitsBudget / vocab, 1, tokens);
        _logits = device.Allocate<float>((long)_rows * vocab);
        _rowLoss = device.Allocate<float>(tokens);
    }

    public long Bytes => _logits.Bytes + _rowLoss.Bytes;

    /// <summary>(Σ token losses, scored tokens) of hidden (n, C) against head (V, C); with <paramref name="dHidden"/>
    /// non-empty, dHidden += gradScale · (softmax − onehot) · W.</summary>
    public (double LossSum, int Count) Run(ArrayView<float> hidden, DeviceMatrix head, ArrayView<int> targetsOnDevice, ReadOnlySpan<int> targets,
        int n, int c, float gradScale, ArrayView<float> dHidden, ArrayView<float> scratch)
    {
        var k = _dev.Kernels;
        var gemm = _dev.Gemm;
        int V = _vocab;
        bool wantGrad = dHidden.Length > 0;
        for (int r0 = 0; r0 < n; r0 += _rows)
        {
            int rows = Math.Min(_rows, n - r0);
            var h = hidden.SubView((long)r0 * c, (long)rows * c);
            for (int v0 = 0; v0 < V; v0 += _vocabChunk)
            {
                int vc = Math.Min(_vocabChunk, V - v0);
                var w = head.RowsF32(k, v0, vc, scratch);
                gemm.Gemm(false, true, rows, vc, c, 1f, h, c, w, c, 0f, LogitColumns(v0, rows, vc), V);
            }
            k.CrossEntropyRows(_logits.View, targetsOnDevice.SubView(r0, rows), _rowLoss.Slice(r0, rows), rows, V, gradScale, wantGrad);
            if (!wantGrad) continue;
            var dh = dHidden.SubView((long)r0 * c, (long)rows * c);
            for (int v0 = 0; v0 < V; v0 += _vocabChunk)
            {
                int vc = Math.Min(_vocabChunk, V - v0);
                var w = head.RowsF32(k, v0, vc, scratch);
                gemm.Gemm(false, false, rows, c, vc, 1f, LogitColumns(v0, rows, vc), V, w, c, 1f, dh, c);
            }
        }
        var losses = _rowLoss.ToArray();
        double sum = 0;
        int count = 0;
        for (int i = 0; i < n; i++)
        {
            if (targets[i] == CrossEntropyKernels.IgnoreIndex) continue;
            sum += losses[i];
            count++;
        }
        return (sum, count);
    }

    // columns [v0, v0 + vc) of the (rows, V) logits, as a view starting at column v0 with leading dimension V
    ArrayView<float> LogitColumns(int v0, int rows, int vc) => _logits.View.SubView(v0, (long)(rows - 1) * _vocab + vc);

    public void Dispose()
    {
        _logits.Dispose();
        _rowLoss.Dispose();
    }
}
