using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace PeftSharp.Kernels;

/// <summary>SwiGLU gate of the Llama MLP: silu(gate) · up, silu(g) = g · σ(g).</summary>
public static unsafe class SwiGlu
{
    const int Block = 1024; // elements per stack scratch block (4 KiB)

    // output (N,F) = silu(gate) · up
    public static void Forward(Span<float> output, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        int len = gate.Length;
        if (up.Length != len || output.Length < len) throw new ArgumentException("gate, up and output must have the same length");
        fixed (float* po = output) fixed (float* pg = gate) fixed (float* pu = up)
        {
            float* o = po, g = pg, u = pu;
            Threads.For((len + Block - 1) / Block, (b0, b1) =>
            {
                Span<float> sig = stackalloc float[Block];
                for (int b = b0; b < b1; b++)
                {
                    int s = b * Block, m = Math.Min(Block, len - s);
                    var gs = new ReadOnlySpan<float>(g + s, m);
                    var sg = sig[..m];
                    TensorPrimitives.Sigmoid(gs, sg);
                    TensorPrimitives.Multiply(gs, sg, sg);
                    TensorPrimitives.Multiply(sg, new ReadOnlySpan<float>(u + s, m), new Span<float>(o + s, m));
                }
            }, minPerThread: 16);
        }
    }

    // σ = σ(g): dup += dout · g·σ;  dgate += dout · up · σ · (1 + g·(1 − σ)).
    // dgate, dup (N,F) +=
    public static void Backward(Span<float> dgate, Span<float> dup, ReadOnlySpan<float> doutput, ReadOnlySpan<float> gate, ReadOnlySpan<float> up)
    {
        int len = gate.Length;
        if (up.Length != len || doutput.Length < len) throw new ArgumentException("gate, up and doutput must have the same length");
        bool wantDg = !dgate.IsEmpty, wantDu = !dup.IsEmpty;
        if ((wantDg && dgate.Length < len) || (wantDu && dup.Length < len)) throw new ArgumentException("gradient output too short");
        if (!wantDg && !wantDu) return;
        fixed (float* pdg = dgate) fixed (float* pdu = dup) fixed (float* pdo = doutput) fixed (float* pg = gate) fixed (float* pu = up)
        {
            float* dg = pdg, du = pdu, dout = pdo, g = pg, u = pu;
            Threads.For((len + Block - 1) / Block, (b0, b1) =>
            {
                float* sig = stackalloc float[Block];
                var one = Vector256<float>.One;
                for (int b = b0; b < b1; b++)
                {
                    int s = b * Block, m = Math.Min(Block, len - s);
                    TensorPrimitives.Sigmoid(new ReadOnlySpan<float>(g + s, m), new Span<float>(sig, m));
                    float* gb = g + s, ub = u + s, db = dout + s;
                    int j = 0;
                    for (; j + 8 <= m; j += 8)
                    {
                        var vs = Vector256.Load(sig + j); var vg = Vector256.Load(gb + j); var vd = Vector256.Load(db + j);
                        if (wantDu) Vector256.Store(Vector256.FusedMultiplyAdd(vd, vg * vs, Vector256.Load(du + s + j)), du + s + j);
                        if (wantDg)
                        {
                            var t = vd * Vector256.Load(ub + j) * vs * Vector256.FusedMultiplyAdd(vg, one - vs, one);
                            Vector256.Store(Vector256.Load(dg + s + j) + t, dg + s + j);
                        }
                    }
                    for (; j < m; j++)
                    {
                        float sj = sig[j], gj = gb[j], dj = db[j];
                        if (wantDu) du[s + j] += dj * gj * sj;
                        if (wantDg) dg[s + j] += dj * ub[j] * sj * (1 + gj * (1 - sj));
                    }
                }
            }, minPerThread: 16);
        }
    }
}
