using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace PeftSharp.Quantization;

/// <summary>
/// The 4-bit inner loops: quantize one block to packed nibbles, dequantize a run of packed nibbles with one scale.
/// Each has a scalar reference and an AVX2 path; the tests check they agree bit for bit.
/// Packing (bitsandbytes): element 2j → high nibble of byte j, element 2j+1 → low nibble.
/// </summary>
internal static unsafe class Quant4Kernels
{
    /// <summary>Divisor floor for an all-zero block (bitsandbytes' default backend: max(absmax, 1e-38)).</summary>
    public const float MinScale = 1e-38f;


    /// <summary>Index of the first non-finite value in x, or −1.</summary>
    public static int FirstNonFinite(ReadOnlySpan<float> x)
    {
        for (int i = 0; i < x.Length; i++) if (!float.IsFinite(x[i])) return i;
        return -1;
    }

    /// <summary>max |x| (x finite).</summary>
    public static float AbsMax(ReadOnlySpan<float> x)
    {
        int i = 0;
        float m = 0f;
        if (Vector256.IsHardwareAccelerated && x.Length >= 8)
        {
            var acc = Vector256<float>.Zero;
            fixed (float* p = x)
                for (; i + 8 <= x.Length; i += 8) acc = Vector256.Max(acc, Vector256.Abs(Vector256.Load(p + i)));
            for (int k = 0; k < 8; k++) m = MathF.Max(m, acc[k]);
        }
        for (; i < x.Length; i++) m = MathF.Max(m, MathF.Abs(x[i]));
        return m;
    }

    // block x (len ≤ blocksize, starts on an even element) -> packed ((len+1)/2 bytes). An odd tail's low nibble
    // holds the code of 0.0 (bitsandbytes pads the scaled values with 0.0 before packing).
    public static void QuantizeBlock(bool avx2, ReadOnlySpan<float> x, float absmax, Quant4Type type, Span<byte> packed)
    {
        if (avx2 && x.Length >= 8) QuantizeBlockAvx2(x, absmax, type, packed);
        else QuantizeBlockScalar(x, absmax, type, packed);
    }

    public static void QuantizeBlockScalar(ReadOnlySpan<float> x, float absmax, Quant4Type type, Span<byte> packed)
    {
        float d = MathF.Max(absmax, MinScale);
        byte pad = Quant4Tables.Nearest(0f, type);
        for (int j = 0; 2 * j < x.Length; j++)
        {
            byte hi = Quant4Tables.Nearest(Math.Clamp(x[2 * j] / d, -1f, 1f), type);
            byte lo = 2 * j + 1 < x.Length ? Quant4Tables.Nearest(Math.Clamp(x[2 * j + 1] / d, -1f, 1f), type) : pad;
            packed[j] = (byte)((hi << 4) | lo);
        }
    }

    static void QuantizeBlockAvx2(ReadOnlySpan<float> x, float absmax, Quant4Type type, Span<byte> packed)
    {
        float d = MathF.Max(absmax, MinScale);
        var vd = Vector256.Create(d);
        var one = Vector256.Create(1f);
        var minusOne = Vector256.Create(-1f);
        var evenDwords = Vector256.Create(0, 2, 4, 6, 0, 2, 4, 6);
        int i = 0;
        fixed (float* px = x)
        fixed (byte* pq = packed)
        {
            for (; i + 8 <= x.Length; i += 8)
            {
                var s = Vector256.Min(Vector256.Max(Vector256.Load(px + i) / vd, minusOne), one);
                Vector256<int> c = type == Quant4Type.NF4 ? CodesNf4(s) : CodesFp4(s);
                // pairs (c0, c1) as one 64-bit lane: (lane << 4) | (lane >> 32) has c0<<4 | c1 in its low dword
                var l = c.AsInt64();
                var pairs = (Avx2.ShiftLeftLogical(l, 4) | Avx2.ShiftRightLogical(l, 32)).AsInt32();
                var four = Avx2.PermuteVar8x32(pairs, evenDwords).GetLower();
                var w16 = Sse2.PackSignedSaturate(four, four);
                var b8 = Sse2.PackUnsignedSaturate(w16, w16);
                *(uint*)(pq + (i >> 1)) = b8.AsUInt32().ToScalar();
            }
        }
        if (i < x.Length) QuantizeBlockScalar(x[i..], absmax, type, packed[(i >> 1)..]);
    }

    // code = number of midpoints strictly below s (compare masks are −1 where true)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> CodesNf4(Vector256<float> s)
    {
        var acc = Vector256<int>.Zero;
        var mids = Quant4Tables.NF4Midpoints;
        for (int k = 0; k < mids.Length; k++)
            acc -= Vector256.GreaterThan(s, Vector256.Create(mids[k])).AsInt32();
        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> CodesFp4(Vector256<float> s)
    {
        var a = Vector256.Abs(s);
        var rank = Vector256<int>.Zero;
        var mids = Quant4Tables.FP4MagnitudeMidpoints;
        for (int k = 0; k < mids.Length; k++)
            rank -= Vector256.GreaterThan(a, Vector256.Create(mids[k])).AsInt32();
        var magCodes = Vector256.Create(0, 1, 6, 7, 4, 5, 2, 3);
        var code = Avx2.PermuteVar8x32(magCodes, rank);
        var sign = Vector256.LessThan(s, Vector256<float>.Zero).AsInt32() & Vector256.Create(8);
        return code | sign;
    }

    /// <summary>dst[k] = table[code(start + k)] · scale for k &lt; dst.Length; start is an element index into packed.</summary>
    public static void Dequantize(bool avx2, byte* packed, long start, ReadOnlySpan<float> table, float scale, Span<float> dst)
    {
        if (avx2) DequantizeAvx2(packed, start, table, scale, dst);
        else DequantizeScalar(packed, start, table, scale, dst);
    }

    public static void DequantizeScalar(byte* packed, long start, ReadOnlySpan<float> table, float scale, Span<float> dst)
    {
        for (int k = 0; k < dst.Length; k++)
        {
            long e = start + k;
            byte b = packed[e >> 1];
            int code = (e & 1) == 0 ? b >> 4 : b & 0xF;
            dst[k] = table[code] * scale;
        }
    }

    static void DequantizeAvx2(byte* packed, long start, ReadOnlySpan<float> table, float scale, Span<float> dst)
    {
        int k = 0;
        if ((start & 1) != 0 && dst.Length > 0)
        {
            dst[0] = table[packed[start >> 1] & 0xF] * scale;
            k = 1;
        }
        fixed (float* t = table)
        fixed (float* d = dst)
        {
            var tLo = Vector256.Load(t);
            var tHi = Vector256.Load(t + 8);
            var vs = Vector256.Create(scale);
            var nibble = Vector128.Create((byte)0x0F);
            byte* src = packed + ((start + k) >> 1);
            // 8 packed bytes → 16 floats per iteration
            for (; k + 16 <= dst.Length; k += 16, src += 8)
            {
                var b = Vector128.CreateScalar(*(ulong*)src).AsByte();
                var hi = Sse2.ShiftRightLogical(b.AsUInt16(), 4).AsByte() & nibble;
                var lo = b & nibble;
                var inter = Sse2.UnpackLow(hi, lo); // h0 l0 h1 l1 … h7 l7
                var i0 = Avx2.ConvertToVector256Int32(inter);
                var i1 = Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(inter, 8));
                Vector256.Store(Lookup16(tLo, tHi, i0) * vs, d + k);
                Vector256.Store(Lookup16(tLo, tHi, i1) * vs, d + k + 8);
            }
        }
        if (k < dst.Length) DequantizeScalar(packed, start + k, table, scale, dst[k..]);
    }

    /// <summary>
    /// Whole blocks: dst = blocks [firstBlock, firstBlock + scales.Length) dequantized, block b scaled by
    /// scales[b − firstBlock]. blockSize must be a multiple of 16 (all allowed sizes are). Same result as
    /// <see cref="Dequantize"/> per block, with the table and loop setup hoisted out of the block loop.
    /// </summary>
    public static void DequantizeBlocks(bool avx2, byte* packed, long firstBlock, int blockSize, ReadOnlySpan<float> table,
        ReadOnlySpan<float> scales, Span<float> dst)
    {
        if (dst.Length < (long)scales.Length * blockSize) throw new ArgumentException("dst too small");
        if (!avx2 || blockSize % 16 != 0)
        {
            for (int j = 0; j < scales.Length; j++)
                DequantizeScalar(packed, (firstBlock + j) * blockSize, table, scales[j], dst.Slice(j * blockSize, blockSize));
            return;
        }
        fixed (float* t = table)
        fixed (float* d0 = dst)
        {
            var tLo = Vector256.Load(t);
            var tHi = Vector256.Load(t + 8);
            var nibble = Vector128.Create((byte)0x0F);
            byte* src = packed + firstBlock * blockSize / 2;
            float* d = d0;
            for (int j = 0; j < scales.Length; j++)
            {
                var vs = Vector256.Create(scales[j]);
                for (int k = 0; k < blockSize; k += 16, src += 8, d += 16)
                {
                    var b = Vector128.CreateScalar(*(ulong*)src).AsByte();
                    var hi = Sse2.ShiftRightLogical(b.AsUInt16(), 4).AsByte() & nibble;
                    var lo = b & nibble;
                    var inter = Sse2.UnpackLow(hi, lo);
                    var i0 = Avx2.ConvertToVector256Int32(inter);
                    var i1 = Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(inter, 8));
                    Vector256.Store(Lookup16(tLo, tHi, i0) * vs, d);
                    Vector256.Store(Lookup16(tLo, tHi, i1) * vs, d + 8);
                }
            }
        }
    }

    // 16-entry float table lookup: vpermps on each half, select the upper half where bit 3 of the index is set.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Lookup16(Vector256<float> tLo, Vector256<float> tHi, Vector256<int> idx)
    {
        var a = Avx2.PermuteVar8x32(tLo, idx);
        var b = Avx2.PermuteVar8x32(tHi, idx);
        return Avx.BlendVariable(a, b, Avx2.ShiftLeftLogical(idx, 28).AsSingle());
    }
}
