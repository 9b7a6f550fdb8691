using ILGPU;
using ILGPU.Algorithms;

namespace PeftSharp.Cuda.Kernels;

/// <summary>
/// Softmax cross-entropy over a chunk of rows whose logits (rows, V) the LM-head GEMM wrote: one thread per row
/// computes its max, log-sum-exp (float64 sum) and loss lse − logit[target], and with gradients turns the row into
/// dlogits = gradScale · (softmax − onehot) in place (zero for ignored rows, target −100).
/// </summary>
internal static class CrossEntropyKernels
{
    public const int IgnoreIndex = -100;

    public static void Rows(Index1D r, ArrayView<float> logits, ArrayView<int> targets, ArrayView<float> loss, int vocab, float gradScale, int wantGrad)
    {
        long o = (long)(int)r * vocab;
        int target = targets[r];
        if (target == IgnoreIndex)
        {
            loss[r] = 0f;
            if (wantGrad != 0) for (int v = 0; v < vocab; v++) logits[o + v] = 0f;
            return;
        }
        float mx = float.NegativeInfinity;
        for (int v = 0; v < vocab; v++) mx = XMath.Max(mx, logits[o + v]);
        double sum = 0;
        for (int v = 0; v < vocab; v++) sum += XMath.Exp(logits[o + v] - mx);
        float lse = mx + (float)XMath.Log(sum);
        loss[r] = lse - logits[o + target];
        if (wantGrad == 0) return;
        for (int v = 0; v < vocab; v++)
        {
            float p = XMath.Exp(logits[o + v] - lse);
            logits[o + v] = gradScale * (v == target ? p - 1f : p);
        }
    }
}
