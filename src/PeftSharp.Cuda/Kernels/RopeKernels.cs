using ILGPU;

namespace PeftSharp.Cuda.Kernels;

/// <summary>
/// RoPE in HF's rotate-half form, in place on x (n, heads, 2·half): each thread rotates the pair (f, f + half) of one
/// (token, head) by angle = position · inv_freq[f] (sign −1: the inverse rotation, which is the backward).
/// cos/sin are the host table's rows (positions, half).
/// </summary>
internal static class RopeKernels
{
    public static void Rotate(Index1D i, ArrayView<float> x, ArrayView<int> positions, ArrayView<float> cos, ArrayView<float> sin,
        int heads, int half, float sign)
    {
        int perToken = heads * half;
        int t = i / perToken, rem = i - t * perToken;
        int h = rem / half, f = rem - h * half;
        long b = ((long)t * heads + h) * 2 * half;
        long at = (long)positions[t] * half + f;
        float c = cos[at], s = sign * sin[at];
        float x0 = x[b + f], x1 = x[b + f + half];
        x[b + f] = x0 * c - x1 * s;
        x[b + f + half] = x1 * c + x0 * s;
    }
}
