using System.Runtime.Intrinsics;
using PeftSharp.Compute;

namespace PeftSharp.Peft;

/// <summary>
/// out (r, b) = M (r, c) · X (c, b) in float64, all row-major, for a thin X (b a multiple of 8, a block of Krylov
/// vectors). Four rows of M share every load of X; 16 columns at a time stay in registers. Rows are split over threads
/// (each output row is computed by one thread in a fixed order, so the result does not depend on the thread count).
/// </summary>
internal static class BlockProduct64
{
    public static void Multiply(ComputeContext ctx, double[] m, int r, int c, double[] x, int b, double[] output)
    {
        if (b % 8 != 0) throw new ArgumentException($"block width {b} must be a multiple of 8");
        if (m.Length < (long)r * c || x.Length < (long)c * b || output.Length < (long)r * b) throw new ArgumentException("block product: buffer too small");
        ctx.For((r + 3) / 4, (start, end) =>
        {
            for (int g = start; g < end; g++)
            {
                int i0 = g * 4, rowsHere = Math.Min(4, r - i0);
                for (int j = 0; j < b; j += 16)
                {
                    if (rowsHere == 4 && j + 16 <= b) Panel4x16(m, c, i0, x, b, j, output);
                    else for (int i = i0; i < i0 + rowsHere; i++) Row(m, c, i, x, b, j, Math.Min(16, b - j), output);
                }
            }
        }, minPerThread: 8);
    }

    /// <summary>Rows i0 … i0+3, columns j … j+15.</summary>
    static void Panel4x16(double[] m, int c, int i0, double[] x, int b, int j, double[] output)
    {
        var a00 = Vector512<double>.Zero; var a01 = Vector512<double>.Zero;
        var a10 = Vector512<double>.Zero; var a11 = Vector512<double>.Zero;
        var a20 = Vector512<double>.Zero; var a21 = Vector512<double>.Zero;
        var a30 = Vector512<double>.Zero; var a31 = Vector512<double>.Zero;
        var m0 = new ReadOnlySpan<double>(m, i0 * c, c);
        var m1 = new ReadOnlySpan<double>(m, (i0 + 1) * c, c);
        var m2 = new ReadOnlySpan<double>(m, (i0 + 2) * c, c);
        var m3 = new ReadOnlySpan<double>(m, (i0 + 3) * c, c);
        var xs = x.AsSpan();
        for (int k = 0, off = j; k < c; k++, off += b)
        {
            var x0 = Vector512.Create<double>(xs.Slice(off, 8));
            var x1 = Vector512.Create<double>(xs.Slice(off + 8, 8));
            var s = Vector512.Create(m0[k]);
            a00 = Vector512.FusedMultiplyAdd(s, x0, a00); a01 = Vector512.FusedMultiplyAdd(s, x1, a01);
            s = Vector512.Create(m1[k]);
            a10 = Vector512.FusedMultiplyAdd(s, x0, a10); a11 = Vector512.FusedMultiplyAdd(s, x1, a11);
            s = Vector512.Create(m2[k]);
            a20 = Vector512.FusedMultiplyAdd(s, x0, a20); a21 = Vector512.FusedMultiplyAdd(s, x1, a21);
            s = Vector512.Create(m3[k]);
            a30 = Vector512.FusedMultiplyAdd(s, x0, a30); a31 = Vector512.FusedMultiplyAdd(s, x1, a31);
        }
        var o = output.AsSpan();
        a00.CopyTo(o.Slice(i0 * b + j)); a01.CopyTo(o.Slice(i0 * b + j + 8));
        a10.CopyTo(o.Slice((i0 + 1) * b + j)); a11.CopyTo(o.Slice((i0 + 1) * b + j + 8));
        a20.CopyTo(o.Slice((i0 + 2) * b + j)); a21.CopyTo(o.Slice((i0 + 2) * b + j + 8));
        a30.CopyTo(o.Slice((i0 + 3) * b + j)); a31.CopyTo(o.Slice((i0 + 3) * b + j + 8));
    }

    /// <summary>One row, columns j … j+width (width 8 or 16).</summary>
    static void Row(double[] m, int c, int i, double[] x, int b, int j, int width, double[] output)
    {
        var a0 = Vector512<double>.Zero; var a1 = Vector512<double>.Zero;
        var mi = new ReadOnlySpan<double>(m, i * c, c);
        var xs = x.AsSpan();
        for (int k = 0, off = j; k < c; k++, off += b)
        {
            var s = Vector512.Create(mi[k]);
            a0 = Vector512.FusedMultiplyAdd(s, Vector512.Create<double>(xs.Slice(off, 8)), a0);
            if (width == 16) a1 = Vector512.FusedMultiplyAdd(s, Vector512.Create<double>(xs.Slice(off + 8, 8)), a1);
        }
        a0.CopyTo(output.AsSpan(i * b + j));
        if (width == 16) a1.CopyTo(output.AsSpan(i * b + j + 8));
    }
}
