using PeftSharp.Compute;
using PeftSharp.Tensors;

namespace PeftSharp.Kernels;

/// <summary>Token embedding lookup (a row gather) and its scatter-add backward.</summary>
internal static unsafe class Embedding
{
    // output (N,C) = weight[ids[i], :]; weight (V,C) in any storage dtype (F32, BF16, F16 widened per row).
    public static void Forward(ComputeContext ctx, Span<float> output, ReadOnlySpan<int> ids, in MatrixView weight)
    {
        int n = ids.Length, c = weight.Cols, vocab = weight.Rows;
        if (output.Length < (long)n * c) throw new ArgumentException($"output holds {output.Length} floats, need {(long)n * c}");
        for (int i = 0; i < n; i++)
            if ((uint)ids[i] >= (uint)vocab)
                throw new PeftException($"token id {ids[i]} at position {i} is outside the embedding table (vocab size {vocab})");
        var w = weight;
        long rowBytes = (long)w.Stride * w.DType.Size();
        fixed (float* pOut = output)
        fixed (int* pIds = ids)
        {
            float* o = pOut; int* id = pIds;
            ctx.For(n, (i0, i1) =>
            {
                for (int i = i0; i < i1; i++)
                    DTypeConvert.ToFloat(w.Data + id[i] * rowBytes, w.DType, new Span<float>(o + (long)i * c, c));
            }, minPerThread: 64);
        }
    }

    // dweight (V,C) += Σ_{i: ids[i]=v} doutput[i,:]. Threads own disjoint column ranges, so the sum order per element
    // is always token order: deterministic and race-free.
    public static void Backward(ComputeContext ctx, Span<float> dweight, ReadOnlySpan<float> doutput, ReadOnlySpan<int> ids, int c)
    {
        int n = ids.Length;
        if (dweight.IsEmpty) return;
        if (doutput.Length < (long)n * c) throw new ArgumentException($"doutput holds {doutput.Length} floats, need {(long)n * c}");
        long vocab = dweight.Length / c;
        for (int i = 0; i < n; i++)
            if ((uint)ids[i] >= (ulong)vocab)
                throw new PeftException($"token id {ids[i]} at position {i} is outside the embedding table (vocab size {vocab})");
        fixed (float* pdw = dweight)
        fixed (float* pdo = doutput)
        fixed (int* pIds = ids)
        {
            float* dw = pdw, dout = pdo; int* id = pIds;
            ctx.For(c, (c0, c1) =>
            {
                int len = c1 - c0;
                for (int i = 0; i < n; i++)
                {
                    var dst = new Span<float>(dw + (long)id[i] * c + c0, len);
                    System.Numerics.Tensors.TensorPrimitives.Add(dst, new ReadOnlySpan<float>(dout + (long)i * c + c0, len), dst);
                }
            }, minPerThread: 256);
        }
    }
}
