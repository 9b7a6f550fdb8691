namespace PeftSharp.Tensors;

/// <summary>
/// A row-major matrix in any storage dtype: element (r, c) lives at Data + (r·Stride + c)·size.
/// The GEMM reads operands through this so that BF16/F16 weights are widened during packing, never copied whole.
/// </summary>
internal readonly unsafe struct MatrixView
{
    public readonly byte* Data;
    public readonly DType DType;
    public readonly int Rows;
    public readonly int Cols;
    /// <summary>Leading dimension in elements (≥ Cols).</summary>
    public readonly int Stride;

    public MatrixView(void* data, DType dtype, int rows, int cols, int stride)
    {
        if (stride < cols) throw new ArgumentException("stride < cols");
        Data = (byte*)data;
        DType = dtype;
        Rows = rows;
        Cols = cols;
        Stride = stride;
    }

    public static MatrixView F32(float* data, int rows, int cols) => new(data, DType.F32, rows, cols, cols);
    public static MatrixView F32(float* data, int rows, int cols, int stride) => new(data, DType.F32, rows, cols, stride);

    /// <summary>Element (r, c) widened to float (slow path for references and tests).</summary>
    public float this[int r, int c]
    {
        get
        {
            long i = (long)r * Stride + c;
            return DType switch
            {
                DType.F32 => ((float*)Data)[i],
                DType.BF16 => Bf16.ToFloat(((ushort*)Data)[i]),
                DType.F16 => (float)((Half*)Data)[i],
                _ => throw new NotSupportedException($"MatrixView of {DType}"),
            };
        }
    }

    /// <summary>Rows [start, start+count) as a view.</summary>
    public MatrixView SliceRows(int start, int count)
        => new(Data + (long)start * Stride * DType.Size(), DType, count, Cols, Stride);
}
