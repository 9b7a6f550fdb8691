using PeftSharp.Compute;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace PeftSharp.Kernels;

/// <summary>SwiGLU gate of the Llama MLP: silu(gate) · up, silu(g) = g · σ(g).</summary>
internal static unsafe class SwiGlu
{
    const int Block = 1024; // elements per unit of parallel work

    // output (N,F) = silu(gate) · up
    public static void Forward(ComputeContext ctx, Span<float> output, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        int len = gate.Length;
        if (up.Length != len || output.Length < len) throw new ArgumentException("gate, up and output must have the same length");
        fixed (float* po = output) fixed (float* pg = gate) fixed (float* pu = up)
        {
            float* o = po, g = pg, u = pu;
            ctx.For((len + Block - 1) / Block, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (b0, b1) =>
            {
                int s = b0 * Block, e = Math.Min(len, b1 * Block), j = s;
                var one = Vector256<float>.One;
                for (; j + 8 <= e; j += 8)
                {
                    var vg = Vector256.Load(g + j);
                    // silu(g) = g / (1 + e^(−g)); e^(−g) = +∞ for very negative g gives −0, the correct limit
                    Vector256.Store(vg / (one + Vector256.Exp(-vg)) * Vector256.Load(u + j), o + j);
                }
                for (; j < e; j++) o[j] = g[j] / (1 + MathF.Exp(-g[j])) * u[j];
            }, minPerThread: 16);
        }
    }

    // σ = σ(g): dup += dout · g·σ;  dgate += dout · up · σ · (1 + g·(1 − σ)).
    // dgate, dup (N,F) +=
    public static void Backward(ComputeContext ctx, Span<float> dgate, Span<float> dup, ReadOnlySpan<float> doutput, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        int len = gate.Length;
        if (up.Length != len || doutput.Length < len) throw new ArgumentException("gate, up and doutput must have the same length");
        bool wantDg = !dgate.IsEmpty, wantDu = !dup.IsEmpty;
        if ((wantDg && dgate.Length < len) || (wantDu && dup.Length < len)) throw new ArgumentException("gradient output too short");
        if (!wantDg && !wantDu) return;
        fixed (float* pdg = dgate) fixed (float* pdu = dup) fixed (float* pdo = doutput) fixed (float* pg = gate) fixed (float* pu = up)
        {
            float* dg = pdg, du = pdu, dout = pdo, g = pg, u = pu;
            ctx.For((len + Block - 1) / Block, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (b0, b1) =>
            {
                int s = b0 * Block, e = Math.Min(len, b1 * Block), j = s;
                var one = Vector256<float>.One;
                for (; j + 8 <= e; j += 8)
                {
                    var vg = Vector256.Load(g + j); var vd = Vector256.Load(dout + j);
                    var vs = one / (one + Vector256.Exp(-vg));
                    if (wantDu) Vector256.Store(Vector256.FusedMultiplyAdd(vd, vg * vs, Vector256.Load(du + j)), du + j);
                    if (wantDg)
                    {
                        var t = vd * Vector256.Load(u + j) * vs * Vector256.FusedMultiplyAdd(vg, one - vs, one);
                        Vector256.Store(Vector256.Load(dg + j) + t, dg + j);
                    }
                }
                for (; j < e; j++)
                {
                    float sj = 1 / (1 + MathF.Exp(-g[j])), gj = g[j], dj = dout[j];
                    if (wantDu) du[j] += dj * gj * sj;
                    if (wantDg) dg[j] += dj * u[j] * sj * (1 + gj * (1 - sj));
                }
            }, minPerThread: 16);
        }
    }
}
