namespace PeftSharp.Tensors;

/// <summary>
/// A dense row-major tensor: shape, storage dtype and a pointer to its bytes. The bytes are either owned (a
/// <see cref="NativeBuffer"/>) or borrowed from something that outlives the tensor (a memory-mapped safetensors file).
/// </summary>
internal sealed unsafe class Tensor : IDisposable
{
    readonly NativeBuffer? _owned;
    readonly IDisposable? _keepAlive;

    public int[] Shape { get; }
    public DType DType { get; }
    public byte* Data { get; }
    public long ElementCount { get; }
    public long ByteLength => ElementCount * DType.Size();

    public Tensor(DType dtype, params int[] shape)
    {
        Shape = (int[])shape.Clone();
        DType = dtype;
        ElementCount = CountElements(shape);
        _owned = new NativeBuffer(ElementCount * dtype.Size());
        Data = _owned.Pointer;
    }

    /// <summary>Wraps borrowed memory; <paramref name="keepAlive"/> (e.g. the mapped file) is disposed with the tensor if given.</summary>
    public Tensor(DType dtype, int[] shape, byte* data, IDisposable? keepAlive = null)
    {
        Shape = (int[])shape.Clone();
        DType = dtype;
        ElementCount = CountElements(shape);
        Data = data;
        _keepAlive = keepAlive;
    }

    public static long CountElements(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException("negative dimension in shape");
            n = checked(n * d);
        }
        return n;
    }

    public int Rank => Shape.Length;
    public int Dim(int i) => Shape[i < 0 ? Shape.Length + i : i];

    /// <summary>The raw elements viewed as <typeparamref name="T"/> (for F32: float, BF16/F16: ushort/Half, U8: byte).</summary>
    public Span<T> Span<T>() where T : unmanaged
    {
        if (sizeof(T) != DType.Size() && !(DType == DType.U8))
            throw new InvalidOperationException($"cannot view {DType} tensor as {typeof(T).Name}");
        return new Span<T>(Data, checked((int)(ByteLength / sizeof(T))));
    }

    /// <summary>Float32 elements; only for F32 tensors.</summary>
    public Span<float> Floats => DType == DType.F32
        ? new Span<float>(Data, checked((int)ElementCount))
        : throw new InvalidOperationException($"tensor is {DType}, not F32");

    /// <summary>A 2-D view [rows, cols] of this tensor (rows = product of all but the last dimension).</summary>
    public MatrixView AsMatrix()
    {
        int cols = Rank == 0 ? 1 : Shape[^1];
        int rows = cols == 0 ? 0 : checked((int)(ElementCount / cols));
        return new MatrixView(Data, DType, rows, cols, cols);
    }

    /// <summary>Copy converted to float32 (new owned tensor).</summary>
    public Tensor ToF32()
    {
        var t = new Tensor(DType.F32, Shape);
        DTypeConvert.ToFloat(Data, DType, t.Floats);
        return t;
    }

    /// <summary>Owned bytes that were freed (borrowed memory reports false).</summary>
    public bool IsDisposed => _owned is { IsDisposed: true };

    public string ShapeString => "[" + string.Join(", ", Shape) + "]";

    public void Dispose()
    {
        _owned?.Dispose();
        _keepAlive?.Dispose();
    }
}
