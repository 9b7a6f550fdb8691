using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using PeftSharp.Tensors;

namespace PeftSharp.Kernels.Blas;

/// <summary>
/// Copies blocks of op(A) and op(B) into the contiguous sliver layout the micro-kernel streams through, widening
/// BF16/F16 to float32 on the way (the only place a non-F32 operand is ever converted). Padding rows/columns of a
/// partial sliver are zero so the kernel can always compute a full MR×NR tile.
/// </summary>
static unsafe class Packing
{
    /// <summary>
    /// Packs op(B)[pc..pc+kc, jc..jc+nc) slivers q0..q1 (NR columns each) into dst: sliver q at dst + q·kc·NR,
    /// laid out (kc, NR). op(B) = B (k,n) or, with transB, Bᵀ where B is (n,k).
    /// </summary>
    public static void PackB<TK>(in MatrixView b, bool transB, int pc, int kc, int jc, int nc, int q0, int q1, float* dst)
        where TK : IMicroKernel
    {
        switch (b.DType)
        {
            case DType.F32: PackB<TK, F32Load>(b.Data, b.Stride, transB, pc, kc, jc, nc, q0, q1, dst); break;
            case DType.BF16: PackB<TK, Bf16Load>(b.Data, b.Stride, transB, pc, kc, jc, nc, q0, q1, dst); break;
            case DType.F16: PackB<TK, F16Load>(b.Data, b.Stride, transB, pc, kc, jc, nc, q0, q1, dst); break;
            default: throw new NotSupportedException($"GEMM operand of dtype {b.DType}");
        }
    }

    /// <summary>
    /// Packs op(A)[ic..ic+mc, pc..pc+kc) into slivers of MR rows: sliver r at dst + r·kc·MR, laid out (kc, MR).
    /// op(A) = A (m,k) or, with transA, Aᵀ where A is (k,m). dst needs 8 floats of slack past the last sliver.
    /// </summary>
    public static void PackA<TK>(in MatrixView a, bool transA, int ic, int mc, int pc, int kc, float* dst)
        where TK : IMicroKernel
    {
        switch (a.DType)
        {
            case DType.F32: PackA<TK, F32Load>(a.Data, a.Stride, transA, ic, mc, pc, kc, dst); break;
            case DType.BF16: PackA<TK, Bf16Load>(a.Data, a.Stride, transA, ic, mc, pc, kc, dst); break;
            case DType.F16: PackA<TK, F16Load>(a.Data, a.Stride, transA, ic, mc, pc, kc, dst); break;
            default: throw new NotSupportedException($"GEMM operand of dtype {a.DType}");
        }
    }

    static void PackB<TK, TL>(byte* data, long ld, bool trans, int pc, int kc, int jc, int nc, int q0, int q1, float* dst)
        where TK : IMicroKernel where TL : IElementLoad
    {
        int nrFull = TK.NR;
        for (int q = q0; q < q1; q++)
        {
            int j0 = jc + q * nrFull, w = Math.Min(nrFull, jc + nc - j0);
            float* d = dst + (long)q * kc * nrFull;
            if (trans) PackSliverTransposed<TL>(data + ((long)j0 * ld + pc) * TL.Size, ld, kc, w, nrFull, d);
            else PackSliverRows<TL>(data + ((long)pc * ld + j0) * TL.Size, ld, kc, w, nrFull, d);
        }
    }

    static void PackA<TK, TL>(byte* data, long ld, bool trans, int ic, int mc, int pc, int kc, float* dst)
        where TK : IMicroKernel where TL : IElementLoad
    {
        int mrFull = TK.MR;
        for (int r = 0; r * mrFull < mc; r++)
        {
            int i0 = ic + r * mrFull, h = Math.Min(mrFull, ic + mc - i0);
            float* d = dst + (long)r * kc * mrFull;
            if (trans) PackSliverRows<TL>(data + ((long)pc * ld + i0) * TL.Size, ld, kc, h, mrFull, d);
            else PackSliverTransposed<TL>(data + ((long)i0 * ld + pc) * TL.Size, ld, kc, h, mrFull, d);
        }
    }

    // d (kc, width) ← src rows p = 0..kc, w valid contiguous elements each (stride ld); columns w..width zero.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackSliverRows<TL>(byte* src, long ld, int kc, int w, int width, float* d) where TL : IElementLoad
    {
        if (w == width && width >= 8 && Vector256.IsHardwareAccelerated)
        {
            // whole 8-float chunks, then (width 12) one chunk overlapping the previous so nothing is read past the row
            int tail = width - 8;
            for (int p = 0; p < kc; p++, d += width)
            {
                for (int v = 0; v < tail; v += 8)
                    Vector256.Store(TL.Load8(src, p * ld + v), d + v);
                Vector256.Store(TL.Load8(src, p * ld + tail), d + tail);
            }
            return;
        }
        for (int p = 0; p < kc; p++, d += width)
        {
            int j = 0;
            for (; j < w; j++) d[j] = TL.Load1(src, p * ld + j);
            for (; j < width; j++) d[j] = 0;
        }
    }

    // d (kc, width) ← the transpose of src (w rows of kc contiguous elements, stride ld); columns w..width zero.
    // With AVX, 8×8 blocks are transposed in registers and stored as 8-float rows at stride `width`; when width < 8
    // each store runs past its row into the next one (overwritten in order) and 8 floats past the sliver (slack).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackSliverTransposed<TL>(byte* src, long ld, int kc, int w, int width, float* d) where TL : IElementLoad
    {
        int p = 0;
        if (Avx.IsSupported && w == width)
        {
            for (; p + 8 <= kc; p += 8)
                for (int h = (width - 1) & ~7; h >= 0; h -= 8) // high chunk first: its spill is overwritten by the low chunk
                {
                    int rows = Math.Min(8, width - h);
                    var r0 = TL.Load8(src, (h + 0) * ld + p);
                    var r1 = rows > 1 ? TL.Load8(src, (h + 1) * ld + p) : default;
                    var r2 = rows > 2 ? TL.Load8(src, (h + 2) * ld + p) : default;
                    var r3 = rows > 3 ? TL.Load8(src, (h + 3) * ld + p) : default;
                    var r4 = rows > 4 ? TL.Load8(src, (h + 4) * ld + p) : default;
                    var r5 = rows > 5 ? TL.Load8(src, (h + 5) * ld + p) : default;
                    var r6 = rows > 6 ? TL.Load8(src, (h + 6) * ld + p) : default;
                    var r7 = rows > 7 ? TL.Load8(src, (h + 7) * ld + p) : default;
                    Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
                    float* o = d + (long)p * width + h;
                    Vector256.Store(r0, o); o += width;
                    Vector256.Store(r1, o); o += width;
                    Vector256.Store(r2, o); o += width;
                    Vector256.Store(r3, o); o += width;
                    Vector256.Store(r4, o); o += width;
                    Vector256.Store(r5, o); o += width;
                    Vector256.Store(r6, o); o += width;
                    Vector256.Store(r7, o);
                }
        }
        for (int j = 0; j < w; j++)
        {
            byte* row = src + j * ld * TL.Size;
            for (int q = p; q < kc; q++) d[(long)q * width + j] = TL.Load1(row, q);
        }
        for (int q = p; q < kc; q++)
            for (int j = w; j < width; j++) d[(long)q * width + j] = 0;
    }

    // Rows r0..r7 of an 8×8 block become its columns.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose8x8(ref Vector256<float> r0, ref Vector256<float> r1, ref Vector256<float> r2, ref Vector256<float> r3,
                             ref Vector256<float> r4, ref Vector256<float> r5, ref Vector256<float> r6, ref Vector256<float> r7)
    {
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44); var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44); var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44); var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44); var s7 = Avx.Shuffle(t5, t7, 0xEE);
        r0 = Avx.Permute2x128(s0, s4, 0x20); r1 = Avx.Permute2x128(s1, s5, 0x20);
        r2 = Avx.Permute2x128(s2, s6, 0x20); r3 = Avx.Permute2x128(s3, s7, 0x20);
        r4 = Avx.Permute2x128(s0, s4, 0x31); r5 = Avx.Permute2x128(s1, s5, 0x31);
        r6 = Avx.Permute2x128(s2, s6, 0x31); r7 = Avx.Permute2x128(s3, s7, 0x31);
    }
}
