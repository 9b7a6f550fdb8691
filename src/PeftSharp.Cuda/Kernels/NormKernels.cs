using ILGPU;
using ILGPU.Algorithms;

namespace PeftSharp.Cuda.Kernels;

/// <summary>RMSNorm, HF Llama: y = w · x · rsqrt(mean(x²) + eps), one thread per row (backward of the weight: one per column).</summary>
internal static class NormKernels
{
    // y (n,c), rstd (n)
    public static void Forward(Index1D row, ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, ArrayView<float> rstd, int c, float eps)
    {
        long o = (long)(int)row * c;
        float ss = 0;
        for (int j = 0; j < c; j++) { float v = x[o + j]; ss += v * v; }
        float r = 1f / XMath.Sqrt(ss / c + eps);
        rstd[row] = r;
        for (int j = 0; j < c; j++) y[o + j] = x[o + j] * r * w[j];
    }

    // dx_k += r · w_k · dy_k − x_k · r³/c · Σ_j dy_j w_j x_j
    public static void BackwardInput(Index1D row, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> w, ArrayView<float> rstd,
        ArrayView<float> dx, int c)
    {
        long o = (long)(int)row * c;
        float r = rstd[row];
        float dot = 0;
        for (int j = 0; j < c; j++) dot += dy[o + j] * w[j] * x[o + j];
        float coef = r * r * r * dot / c;
        for (int j = 0; j < c; j++) dx[o + j] += r * w[j] * dy[o + j] - x[o + j] * coef;
    }

    // dw_j += Σ_rows dy_j x_j r
    public static void BackwardWeight(Index1D col, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> rstd, ArrayView<float> dw, int n, int c)
    {
        float s = 0;
        for (int i = 0; i < n; i++) s += dy[(long)(int)i * c + col] * x[(long)(int)i * c + col] * rstd[i];
        dw[col] += s;
    }
}
