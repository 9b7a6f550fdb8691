using ILGPU;
using ILGPU.Algorithms;

namespace PeftSharp.Cuda.Kernels;

/// <summary>Elementwise kernels (one thread per element): dtype widening, residual adds, scaling, SwiGLU, embedding.</summary>
internal static class ElementwiseKernels
{
    /// <summary>bfloat16 bits → float32 (the upper half of the float's bits).</summary>
    public static float Bf16ToFloat(ushort bits) => Interop.IntAsFloat((uint)bits << 16);

    // dst (n) = widen(src (n))
    public static void WidenBf16(Index1D i, ArrayView<ushort> src, ArrayView<float> dst) => dst[i] = Bf16ToFloat(src[i]);

    // dst = src
    public static void Copy(Index1D i, ArrayView<float> src, ArrayView<float> dst) => dst[i] = src[i];

    // dst = a + b
    public static void Add(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> dst) => dst[i] = a[i] + b[i];

    // x *= s
    public static void Scale(Index1D i, ArrayView<float> x, float s) => x[i] *= s;

    // out = silu(gate) · up, silu(g) = g · σ(g)
    public static void SwiGluForward(Index1D i, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> output)
    {
        float g = gate[i];
        float s = 1f / (1f + XMath.Exp(-g));
        output[i] = g * s * up[i];
    }

    // dgate += dout · up · (σ + g σ (1 − σ)), dup += dout · silu(g)
    public static void SwiGluBackward(Index1D i, ArrayView<float> dout, ArrayView<float> gate, ArrayView<float> up,
        ArrayView<float> dgate, ArrayView<float> dup)
    {
        float g = gate[i], d = dout[i];
        float s = 1f / (1f + XMath.Exp(-g));
        dup[i] += d * g * s;
        dgate[i] += d * up[i] * (s + g * s * (1f - s));
    }

    // out (n,c) = w[ids[row], :] widened; i over n·c
    public static void EmbeddingForwardBf16(Index1D i, ArrayView<int> ids, ArrayView<ushort> w, ArrayView<float> output, int c)
    {
        int row = i / c, col = i - row * c;
        output[i] = Bf16ToFloat(w[(long)ids[row] * c + col]);
    }

    public static void EmbeddingForwardF32(Index1D i, ArrayView<int> ids, ArrayView<float> w, ArrayView<float> output, int c)
    {
        int row = i / c, col = i - row * c;
        output[i] = w[(long)ids[row] * c + col];
    }

    // dw (V,c) += Σ_t onehot(ids[t]) ⊗ dout[t, :]; one thread per column walks the tokens in order (no atomics,
    // deterministic).
    public static void EmbeddingBackward(Index1D col, ArrayView<int> ids, ArrayView<float> dout, ArrayView<float> dw, int n, int c)
    {
        for (int t = 0; t < n; t++) dw[(long)ids[t] * c + col] += dout[(long)t * c + col];
    }
}
