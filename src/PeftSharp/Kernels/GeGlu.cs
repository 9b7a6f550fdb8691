using PeftSharp.Compute;
using System.Numerics.Tensors;

namespace PeftSharp.Kernels;

/// <summary>
/// GeGLU gate of the Gemma MLP: gelu_tanh(gate) · up, with transformers' "gelu_pytorch_tanh"
/// gelu_tanh(g) = ½·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))), in float32.
/// </summary>
internal static unsafe class GeGlu
{
    const int Block = 1024; // elements per unit of parallel work
    const float Sqrt2OverPi = 0.7978845608028654f, Cubic = 0.044715f;

    /// <summary>One block's work: <paramref name="t"/> = tanh(√(2/π)(g + 0.044715 g³)) of the block's gate values
    /// <paramref name="g"/>, which start at element <paramref name="start"/>.</summary>
    delegate void TanhBlock(int start, ReadOnlySpan<float> g, ReadOnlySpan<float> t);

    /// <summary>Runs <paramref name="body"/> over the blocks of the gate (g at <paramref name="gate"/>), in parallel.</summary>
    static void ForTanhBlocks(ComputeContext ctx, float* gate, int len, TanhBlock body) =>
        ctx.For((len + Block - 1) / Block, (b0, b1) =>
        {
            Span<float> t = stackalloc float[Block];
            for (int b = b0; b < b1; b++)
            {
                int s = b * Block, m = Math.Min(len, s + Block) - s;
                var gs = new ReadOnlySpan<float>(gate + s, m);
                var ts = t[..m];
                TanhArgument(gs, ts);
                TensorPrimitives.Tanh(ts, ts);
                body(s, gs, ts);
            }
        }, minPerThread: 16);

    // output (N,F) = gelu_tanh(gate) · up
    public static void Forward(ComputeContext ctx, Span<float> output, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        int len = gate.Length;
        if (up.Length != len || output.Length < len) throw new ArgumentException("gate, up and output must have the same length");
        fixed (float* po = output) fixed (float* pg = gate) fixed (float* pu = up)
        {
            float* o = po, u = pu;
            ForTanhBlocks(ctx, pg, len, (s, gs, ts) =>
            {
                for (int j = 0; j < gs.Length; j++) o[s + j] = 0.5f * gs[j] * (1 + ts[j]) * u[s + j];
            });
        }
    }

    // With t = tanh(a), a = √(2/π)(g + 0.044715 g³): gelu'(g) = ½(1 + t) + ½·g·(1 − t²)·√(2/π)(1 + 3·0.044715 g²).
    // dup += dout · gelu(g);  dgate += dout · up · gelu'(g).  dgate, dup (N,F) += (either may be empty).
    public static void Backward(ComputeContext ctx, Span<float> dgate, Span<float> dup, ReadOnlySpan<float> doutput, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        int len = gate.Length;
        if (up.Length != len || doutput.Length < len) throw new ArgumentException("gate, up and doutput must have the same length");
        bool wantDg = !dgate.IsEmpty, wantDu = !dup.IsEmpty;
        if ((wantDg && dgate.Length < len) || (wantDu && dup.Length < len)) throw new ArgumentException("gradient output too short");
        if (!wantDg && !wantDu) return;
        fixed (float* pdg = dgate) fixed (float* pdu = dup) fixed (float* pdo = doutput) fixed (float* pg = gate) fixed (float* pu = up)
        {
            float* dg = pdg, du = pdu, dout = pdo, u = pu;
            ForTanhBlocks(ctx, pg, len, (s, gs, ts) =>
            {
                for (int j = 0; j < gs.Length; j++)
                {
                    float gj = gs[j], tj = ts[j], dj = dout[s + j];
                    if (wantDu) du[s + j] += dj * 0.5f * gj * (1 + tj);
                    if (wantDg)
                    {
                        float dGelu = 0.5f * (1 + tj) + 0.5f * gj * (1 - tj * tj) * Sqrt2OverPi * (1 + 3 * Cubic * gj * gj);
                        dg[s + j] += dj * u[s + j] * dGelu;
                    }
                }
            });
        }
    }

    /// <summary>a = √(2/π)·(g + 0.044715·g³) elementwise.</summary>
    static void TanhArgument(ReadOnlySpan<float> g, Span<float> a)
    {
        for (int j = 0; j < g.Length; j++)
        {
            float x = g[j];
            a[j] = Sqrt2OverPi * (x + Cubic * x * x * x);
        }
    }
}
