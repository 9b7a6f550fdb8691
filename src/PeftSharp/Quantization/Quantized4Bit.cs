using PeftSharp.Compute;
using PeftSharp.Kernels;
using PeftSharp.Tensors;

namespace PeftSharp.Quantization;

/// <summary>
/// A weight quantized to 4 bits exactly as bitsandbytes' quantize_4bit does it (reference §5.2–5.3):
/// blocks of <see cref="BlockSize"/> run over the flattened row-major tensor (a block may straddle rows; the last may be
/// partial); absmax[b] = max |w| (float32); each w/max(absmax, 1e-38), clamped to [-1, 1], gets the nearest code
/// (<see cref="Quant4Tables.Nearest"/>); codes are packed two per byte, high nibble first.
/// With double quantization the absmax values are stored as offset = mean(absmax) plus 8-bit codes of (absmax − offset)
/// against the signed dynamic map in blocks of 256, with float32 nested absmax; the dequantized scale is
/// map[q]·nestedAbsmax[b/256] + offset (float32, two roundings, as bitsandbytes).
/// Dequantization gives float32 (bitsandbytes would then cast to the compute dtype).
/// </summary>
internal sealed unsafe class Quantized4Bit : IDisposable
{
    public static readonly int[] AllowedBlockSizes = [32, 64, 128, 256, 512, 1024, 2048, 4096];
    public const int NestedBlockSize = 256;

    readonly NativeBuffer _packed;

    public int[] Shape { get; }
    public long ElementCount { get; }
    public int BlockSize { get; }
    public Quant4Type QuantType { get; }
    /// <summary>The original dtype in bitsandbytes' spelling ("bfloat16", "float16", "float32").</summary>
    public string DTypeName { get; }
    public int BlockCount { get; }
    /// <summary>The 16-entry code table used for dequantization (bitsandbytes' quant_map).</summary>
    public float[] QuantMap { get; }

    /// <summary>Packed codes, (n+1)/2 bytes.</summary>
    public byte* PackedCodes => _packed.Pointer;
    public long PackedByteLength => (ElementCount + 1) / 2;
    public ReadOnlySpan<byte> PackedSpan => new(_packed.Pointer, checked((int)PackedByteLength));

    /// <summary>float32 absmax per block (without double quantization), else null.</summary>
    public float[]? Absmax { get; }
    /// <summary>8-bit codes of absmax − offset (with double quantization), else null.</summary>
    public byte[]? QuantizedAbsmax { get; }
    public float[]? NestedAbsmax { get; }
    public float[]? NestedQuantMap { get; }
    public float NestedOffset { get; }
    public bool DoubleQuant => QuantizedAbsmax != null;

    public int Rows => Shape.Length == 0 ? 1 : checked((int)(ElementCount / Cols));
    public int Cols => Shape.Length == 0 ? 1 : Shape[^1];

    /// <summary>Storage bits per parameter: codes + absmax (+ nested absmax); the scalar offset and the maps are not counted
    /// (4.5 for blocksize 64, 4.127 with double quantization).</summary>
    public double BitsPerParameter
    {
        get
        {
            double bits = 4.0 * ElementCount;
            bits += DoubleQuant ? 8.0 * BlockCount + 32.0 * NestedAbsmax!.Length : 32.0 * BlockCount;
            return bits / ElementCount;
        }
    }

    Quantized4Bit(int[] shape, int blockSize, Quant4Type type, string dtypeName, NativeBuffer packed, float[] quantMap,
        float[]? absmax, byte[]? qabsmax, float[]? nestedAbsmax, float[]? nestedMap, float offset)
    {
        Shape = (int[])shape.Clone();
        ElementCount = Tensor.CountElements(shape);
        BlockSize = blockSize;
        QuantType = type;
        DTypeName = dtypeName;
        BlockCount = Blockwise8.BlockCount(ElementCount, blockSize);
        _packed = packed;
        QuantMap = quantMap;
        Absmax = absmax;
        QuantizedAbsmax = qabsmax;
        NestedAbsmax = nestedAbsmax;
        NestedQuantMap = nestedMap;
        NestedOffset = offset;
    }

    public static void CheckBlockSize(int blockSize, string where)
    {
        if (Array.IndexOf(AllowedBlockSizes, blockSize) < 0)
            throw new PeftException($"{where}: blocksize {blockSize} is not supported (expected one of {string.Join(", ", AllowedBlockSizes)})");
    }

    /// <summary>Quantizes float32 weights w (row-major, shape <paramref name="shape"/>). <paramref name="name"/> names the tensor
    /// in errors (non-finite weights are refused with their flat index).</summary>
    public static Quantized4Bit Quantize(ComputeContext ctx, ReadOnlySpan<float> w, int[] shape, Quant4Type type, int blockSize = 64,
        bool doubleQuant = false, string name = "weight", string dtypeName = "float32")
    {
        fixed (float* p = w)
            return QuantizeCore(ctx, (byte*)p, DType.F32, w.Length, shape, type, blockSize, doubleQuant, name, dtypeName);
    }

    /// <summary>Quantizes an F32/BF16/F16 tensor block by block (no float32 copy of the whole tensor).</summary>
    public static Quantized4Bit Quantize(ComputeContext ctx, Tensor w, Quant4Type type, int blockSize = 64, bool doubleQuant = false, string name = "weight")
    {
        string dtypeName = w.DType switch
        {
            DType.F32 => "float32",
            DType.BF16 => "bfloat16",
            DType.F16 => "float16",
            _ => throw new PeftException($"tensor '{name}': 4-bit quantization needs F32, BF16 or F16 weights, got {w.DType}"),
        };
        return QuantizeCore(ctx, w.Data, w.DType, w.ElementCount, w.Shape, type, blockSize, doubleQuant, name, dtypeName);
    }

    static Quantized4Bit QuantizeCore(ComputeContext ctx, byte* src, DType dtype, long n, int[] shape, Quant4Type type, int blockSize,
        bool doubleQuant, string name, string dtypeName)
    {
        CheckBlockSize(blockSize, $"tensor '{name}'");
        if (Tensor.CountElements(shape) != n) throw new ArgumentException($"shape {string.Join("x", shape)} does not hold {n} elements");
        if (n == 0) throw new PeftException($"tensor '{name}': cannot quantize an empty tensor");
        int nBlocks = Blockwise8.BlockCount(n, blockSize);
        var packed = new NativeBuffer((n + 1) / 2);
        var absmax = new float[nBlocks];
        byte* dstPacked = packed.Pointer;
        int esize = dtype.Size();
        try
        {
            ctx.For(nBlocks, (b0, b1) =>
            {
                float[]? scratch = dtype == DType.F32 ? null : new float[blockSize];
                for (int b = b0; b < b1; b++)
                {
                    long start = (long)b * blockSize;
                    int len = (int)Math.Min(blockSize, n - start);
                    ReadOnlySpan<float> x;
                    if (scratch == null) x = new ReadOnlySpan<float>(src + start * 4, len);
                    else
                    {
                        DTypeConvert.ToFloat(src + start * esize, dtype, scratch.AsSpan(0, len));
                        x = scratch.AsSpan(0, len);
                    }
                    int bad = Quant4Kernels.FirstNonFinite(x);
                    if (bad >= 0)
                        throw new PeftException($"tensor '{name}': non-finite value {x[bad]} at flat index {start + bad} (shape [{string.Join(", ", shape)}]); 4-bit quantization needs finite weights");
                    float amax = Quant4Kernels.AbsMax(x);
                    absmax[b] = amax;
                    Quant4Kernels.QuantizeBlock(ctx.UseAvx2, x, amax, type, new Span<byte>(dstPacked + start / 2, (len + 1) / 2));
                }
            }, minPerThread: 256);
        }
        catch (Exception e) when (e is PeftException || (e is AggregateException ae && ae.InnerException is PeftException))
        {
            packed.Dispose();
            // report the first non-finite value by index, whichever thread saw one first
            long bad = FirstNonFinite(src, dtype, n, out float value);
            throw new PeftException($"tensor '{name}': non-finite value {value} at flat index {bad} (shape [{string.Join(", ", shape)}]); 4-bit quantization needs finite weights");
        }
        catch
        {
            packed.Dispose();
            throw;
        }
        float[] quantMap = Quant4Tables.Code(type).ToArray();
        if (!doubleQuant)
            return new Quantized4Bit(shape, blockSize, type, dtypeName, packed, quantMap, absmax, null, null, null, 0f);
        var (q, nested, offset) = DoubleQuantize(absmax);
        return new Quantized4Bit(shape, blockSize, type, dtypeName, packed, quantMap, null, q, nested, (float[])DynamicMap.Signed.Clone(), offset);
    }

    static long FirstNonFinite(byte* src, DType dtype, long n, out float value)
    {
        var buf = new float[4096];
        for (long start = 0; start < n; start += buf.Length)
        {
            int len = (int)Math.Min(buf.Length, n - start);
            DTypeConvert.ToFloat(src + start * dtype.Size(), dtype, buf.AsSpan(0, len));
            int i = Quant4Kernels.FirstNonFinite(buf.AsSpan(0, len));
            if (i >= 0) { value = buf[i]; return start + i; }
        }
        value = 0;
        return -1;
    }

    /// <summary>Quantizes new weights with this weight's settings (type, blocksize, double quantization, dtype) — the
    /// re-quantization step of merging an adapter into a 4-bit base (reference §2.5).</summary>
    public Quantized4Bit QuantizeLike(ComputeContext ctx, ReadOnlySpan<float> w, string name = "weight")
        => Quantize(ctx, w, Shape, QuantType, BlockSize, DoubleQuant, name, DTypeName);

    /// <summary>
    /// Double quantization of the absmax values: offset = mean(absmax) (summed in float64 in index order, divided,
    /// rounded to float32 — torch's float32 mean can differ in the last ulp for very large tensors); the float32
    /// differences absmax − offset are quantized with <see cref="Blockwise8"/> (blocksize 256, signed dynamic map).
    /// </summary>
    public static (byte[] q, float[] nestedAbsmax, float offset) DoubleQuantize(ReadOnlySpan<float> absmax)
    {
        double sum = 0;
        foreach (var a in absmax) sum += a;
        float offset = (float)(sum / absmax.Length);
        var centered = new float[absmax.Length];
        for (int i = 0; i < centered.Length; i++) centered[i] = absmax[i] - offset;
        var q = new byte[absmax.Length];
        var nested = new float[Blockwise8.BlockCount(absmax.Length, NestedBlockSize)];
        Blockwise8.Quantize(centered, NestedBlockSize, DynamicMap.Signed, q, nested);
        return (q, nested, offset);
    }

    /// <summary>Builds a quantized weight from stored parts (a bitsandbytes checkpoint). Validates sizes.</summary>
    public static Quantized4Bit FromParts(int[] shape, int blockSize, Quant4Type type, string dtypeName, ReadOnlySpan<byte> packedCodes,
        float[] quantMap, float[]? absmax, byte[]? quantizedAbsmax, float[]? nestedAbsmax, float[]? nestedQuantMap, float nestedOffset,
        string where)
    {
        CheckBlockSize(blockSize, where);
        long n = Tensor.CountElements(shape);
        int nBlocks = Blockwise8.BlockCount(n, blockSize);
        if (packedCodes.Length != (n + 1) / 2)
            throw new PeftException($"{where}: packed weight has {packedCodes.Length} bytes, expected {(n + 1) / 2} for shape [{string.Join(", ", shape)}]");
        if (quantMap.Length != 16) throw new PeftException($"{where}: quant_map has {quantMap.Length} values, expected 16");
        if (quantizedAbsmax == null)
        {
            if (absmax == null || absmax.Length != nBlocks)
                throw new PeftException($"{where}: absmax has {absmax?.Length ?? 0} values, expected {nBlocks} float32 values");
        }
        else
        {
            if (quantizedAbsmax.Length != nBlocks)
                throw new PeftException($"{where}: absmax has {quantizedAbsmax.Length} values, expected {nBlocks} uint8 codes");
            int nNested = Blockwise8.BlockCount(nBlocks, NestedBlockSize);
            if (nestedAbsmax == null || nestedAbsmax.Length != nNested)
                throw new PeftException($"{where}: nested_absmax has {nestedAbsmax?.Length ?? 0} values, expected {nNested}");
            if (nestedQuantMap == null || nestedQuantMap.Length != 256)
                throw new PeftException($"{where}: nested_quant_map has {nestedQuantMap?.Length ?? 0} values, expected 256");
        }
        var packed = new NativeBuffer(packedCodes.Length);
        packedCodes.CopyTo(new Span<byte>(packed.Pointer, packedCodes.Length));
        return new Quantized4Bit(shape, blockSize, type, dtypeName, packed, quantMap, absmax, quantizedAbsmax, nestedAbsmax, nestedQuantMap, nestedOffset);
    }

    /// <summary>The dequantized absmax (scale) of block b.</summary>
    public float BlockScale(int b) => QuantizedAbsmax == null
        ? Absmax![b]
        : NestedQuantMap![QuantizedAbsmax[b]] * NestedAbsmax![b / NestedBlockSize] + NestedOffset;

    /// <summary>All block scales, dequantized (float32).</summary>
    public float[] BlockScales()
    {
        var s = new float[BlockCount];
        for (int b = 0; b < s.Length; b++) s[b] = BlockScale(b);
        return s;
    }

    /// <summary>dst = the whole tensor dequantized (row-major, float32). Parallel over rows.</summary>
    public void Dequantize(ComputeContext ctx, Span<float> dst)
    {
        if (dst.Length != ElementCount) throw new ArgumentException($"dst has {dst.Length} elements, expected {ElementCount}");
        DequantizeRows(ctx, 0, Rows, dst);
    }

    /// <summary>
    /// dst = rows [rowStart, rowStart + rowCount) of the [rows, cols] weight, dequantized (rowCount·cols floats): the
    /// per-layer scratch path. Blocks are found from flat indices, so blocks straddling rows are handled.
    /// Parallel over row chunks for large requests; results do not depend on the thread count.
    /// </summary>
    public void DequantizeRows(ComputeContext ctx, int rowStart, int rowCount, Span<float> dst)
    {
        int cols = Cols;
        if (rowStart < 0 || rowCount < 0 || rowStart + rowCount > Rows) throw new ArgumentOutOfRangeException(nameof(rowStart));
        long count = (long)rowCount * cols;
        if (dst.Length < count) throw new ArgumentException($"dst has {dst.Length} elements, expected {count}");
        long flatStart = (long)rowStart * cols;
        if (count < 1 << 16)
        {
            DequantizeRange(ctx, flatStart, dst[..(int)count]);
            return;
        }
        fixed (float* d = dst)
        {
            float* dp = d;
            int minRows = Math.Max(1, (1 << 15) / Math.Max(1, cols));
            ctx.For(rowCount, (r0, r1) =>
                DequantizeRange(ctx, flatStart + (long)r0 * cols, new Span<float>(dp + (long)r0 * cols, (r1 - r0) * cols)), minRows);
        }
    }

    /// <summary>dst = W[row, colStart … colStart + dst.Length) dequantized: one row segment of a GEMM packing panel
    /// (y = x·Wᵀ packs B = Wᵀ from contiguous row segments of W).</summary>
    public void DequantizeRowSegment(ComputeContext ctx, int row, int colStart, Span<float> dst)
    {
        if (row < 0 || row >= Rows || colStart < 0 || colStart + dst.Length > Cols) throw new ArgumentOutOfRangeException(nameof(row));
        DequantizeRange(ctx, (long)row * Cols + colStart, dst);
    }

    /// <summary>dst[k] = w_flat[start + k], dequantized, for k &lt; dst.Length (single-threaded).</summary>
    public void DequantizeRange(ComputeContext ctx, long start, Span<float> dst)
    {
        if (start < 0 || start + dst.Length > ElementCount) throw new ArgumentOutOfRangeException(nameof(start));
        long i = start, end = start + dst.Length;
        byte* packed = _packed.Pointer;
        var table = QuantMap.AsSpan();
        Span<float> scales = stackalloc float[64];
        while (i < end)
        {
            int b = (int)(i / BlockSize);
            long blockStart = (long)b * BlockSize;
            int fullBlocks = (int)Math.Min(64, (end - i) / BlockSize);
            if (i == blockStart && fullBlocks > 0)
            {
                // a run of whole blocks: batch their scales, then the hoisted kernel
                for (int j = 0; j < fullBlocks; j++) scales[j] = BlockScale(b + j);
                int len = fullBlocks * BlockSize;
                Quant4Kernels.DequantizeBlocks(ctx.UseAvx2, packed, b, BlockSize, table, scales[..fullBlocks], dst.Slice((int)(i - start), len));
                i += len;
                continue;
            }
            long blockEnd = Math.Min(end, blockStart + BlockSize);
            Quant4Kernels.Dequantize(ctx.UseAvx2, packed, i, table, BlockScale(b), dst.Slice((int)(i - start), (int)(blockEnd - i)));
            i = blockEnd;
        }
    }

    public void Dispose() => _packed.Dispose();
}
