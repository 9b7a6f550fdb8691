namespace PeftSharp.Models;

/// <summary>
/// Column blocks of a fused projection's output (n rows, width = Σ part widths), e.g. phi3's qkv_proj → q | k | v.
/// Split copies each row's blocks out; Join is its adjoint for the backward (the fused gradient is the blocks side by side).
/// Plain copies, no arithmetic, so not a backend kernel.
/// </summary>
internal static class FusedColumns
{
    /// <summary>dst0 (n, w0), dst1 (n, w1), dst2 (n, w2; w2 may be 0) = the column blocks of src (n, w0+w1+w2).</summary>
    public static void Split(ReadOnlySpan<float> src, int n, Span<float> dst0, int w0, Span<float> dst1, int w1, Span<float> dst2, int w2)
    {
        int w = w0 + w1 + w2;
        for (int r = 0; r < n; r++)
        {
            var row = src.Slice(r * w, w);
            row[..w0].CopyTo(dst0.Slice(r * w0, w0));
            row.Slice(w0, w1).CopyTo(dst1.Slice(r * w1, w1));
            if (w2 > 0) row.Slice(w0 + w1, w2).CopyTo(dst2.Slice(r * w2, w2));
        }
    }

    /// <summary>dst (n, w0+w1+w2) = [src0 | src1 | src2] row by row (overwritten).</summary>
    public static void Join(Span<float> dst, int n, ReadOnlySpan<float> src0, int w0, ReadOnlySpan<float> src1, int w1, ReadOnlySpan<float> src2, int w2)
    {
        int w = w0 + w1 + w2;
        for (int r = 0; r < n; r++)
        {
            var row = dst.Slice(r * w, w);
            src0.Slice(r * w0, w0).CopyTo(row[..w0]);
            src1.Slice(r * w1, w1).CopyTo(row.Slice(w0, w1));
            if (w2 > 0) src2.Slice(r * w2, w2).CopyTo(row.Slice(w0 + w1, w2));
        }
    }
}
