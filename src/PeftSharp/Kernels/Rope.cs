using PeftSharp.Compute;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace PeftSharp.Kernels;

/// <summary>
/// Rotary position embedding as HF transformers Llama: out = x·cos + rotate_half(x)·sin with the (i, i + D/2) pairing:
/// out[i] = x[i]·cos_i − x[i+D/2]·sin_i, out[i+D/2] = x[i+D/2]·cos_i + x[i]·sin_i.
/// </summary>
internal static unsafe class Rope
{
    // x (N, H, D) rotated in place at positions[N]; HF "rotate_half" pairing (i, i + D/2).
    public static void Forward(ComputeContext ctx, Span<float> x, ReadOnlySpan<int> positions, int heads, RopeTable table) => Rotate(ctx, x, positions, heads, table, inverse: false);

    // dx (N, H, D) in place: the transpose (inverse) rotation.
    public static void Backward(ComputeContext ctx, Span<float> dx, ReadOnlySpan<int> positions, int heads, RopeTable table) => Rotate(ctx, dx, positions, heads, table, inverse: true);

    static void Rotate(ComputeContext ctx, Span<float> x, ReadOnlySpan<int> positions, int heads, RopeTable table, bool inverse)
    {
        int n = positions.Length, d = table.HeadDim, half = d / 2;
        if (x.Length < (long)n * heads * d) throw new ArgumentException($"x holds {x.Length} floats, need {(long)n * heads * d}");
        for (int t = 0; t < n; t++)
            if ((uint)positions[t] >= (uint)table.MaxPositions)
                throw new PeftException($"position {positions[t]} (token {t}) is outside the RoPE table (0 … {table.MaxPositions - 1}); raise the context length");
        // The inverse rotation is the rotation by −angle: negate sin.
        float sinSign = inverse ? -1f : 1f;
        var (cosTable, sinTable) = table.TablesFor(positions);
        fixed (float* px = x) fixed (int* ppos = positions) fixed (float* pcos = cosTable) fixed (float* psin = sinTable)
        {
            float* xs = px, cosT = pcos, sinT = psin; int* pos = ppos;
            ctx.For(n, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (t0, t1) =>
            {
                var vSign = Vector256.Create(sinSign);
                for (int t = t0; t < t1; t++)
                {
                    float* c = cosT + (long)pos[t] * half, s = sinT + (long)pos[t] * half;
                    for (int h = 0; h < heads; h++)
                    {
                        float* a = xs + ((long)t * heads + h) * d, b = a + half;
                        int i = 0;
                        for (; i + 8 <= half; i += 8)
                        {
                            var x1 = Vector256.Load(a + i); var x2 = Vector256.Load(b + i);
                            var vc = Vector256.Load(c + i); var vs = Vector256.Load(s + i) * vSign;
                            Vector256.Store(x1 * vc - x2 * vs, a + i);
                            Vector256.Store(x2 * vc + x1 * vs, b + i);
                        }
                        for (; i < half; i++)
                        {
                            float x1 = a[i], x2 = b[i], ci = c[i], si = s[i] * sinSign;
                            a[i] = x1 * ci - x2 * si;
                            b[i] = x2 * ci + x1 * si;
                        }
                    }
                }
            }, minPerThread: 16);
        }
    }
}
