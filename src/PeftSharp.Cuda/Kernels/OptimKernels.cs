using ILGPU;
using ILGPU.Algorithms;

namespace PeftSharp.Cuda.Kernels;

/// <summary>The per-step scalars of torch's AdamW (computed on the host in float64, as the CPU optimizer does).</summary>
internal readonly struct AdamScalars
{
    public readonly float Decay, W1, W2, Beta2, StepSize, Bc2Sqrt, Eps;

    public AdamScalars(float lr, float beta1, float beta2, float eps, float weightDecay, int step)
    {
        Decay = (float)(1.0 - (double)lr * weightDecay);
        W1 = (float)(1.0 - beta1);
        W2 = (float)(1.0 - beta2);
        Beta2 = beta2;
        StepSize = (float)(lr / (1.0 - Math.Pow(beta1, step)));
        Bc2Sqrt = (float)Math.Sqrt(1.0 - Math.Pow(beta2, step));
        Eps = eps;
    }
}

/// <summary>AdamW (torch's single-tensor arithmetic, float32 states), and the gradient norm's partial sums.</summary>
internal static class OptimKernels
{
    public static void AdamW(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, AdamScalars s)
    {
        float gi = g[i];
        float pi = p[i] * s.Decay;
        float mi = m[i];
        mi += s.W1 * (gi - mi);
        float vi = v[i] * s.Beta2 + s.W2 * gi * gi;
        float denom = XMath.Sqrt(vi) / s.Bc2Sqrt + s.Eps;
        p[i] = pi + -s.StepSize * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }

    // partials[part] = Σ x² over [part·chunk, min(n, (part+1)·chunk)) in float64
    public static void SumSquares(Index1D part, ArrayView<float> x, ArrayView<double> partials, int chunk, int n)
    {
        long start = (long)(int)part * chunk;
        long end = XMath.Min((long)n, start + chunk);
        double s = 0;
        for (long j = start; j < end; j++) s += (double)x[j] * x[j];
        partials[part] = s;
    }
}
