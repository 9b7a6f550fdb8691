namespace PeftSharp.IO.Gguf;

/// <summary>A tensor as a GGUF file describes it. <see cref="Dims"/> is in ggml order (ne0, the innermost and
/// contiguous dimension, first): a row-major [rows, cols] matrix has Dims = [cols, rows].</summary>
internal sealed record GgufTensorInfo(string Name, GgmlType Type, long[] Dims, long Offset, long ByteLength)
{
    public long ElementCount => Dims.Aggregate(1L, (a, d) => checked(a * d));

    /// <summary>The row-major shape (outermost first), as Hugging Face and this project write it.</summary>
    public int[] RowMajorShape => Dims.Reverse().Select(d => checked((int)d)).ToArray();
}

/// <summary>A tensor to write: its name, ggml type, row-major shape, byte length and a callback that writes exactly
/// those bytes (so a large model is converted one tensor at a time).</summary>
internal sealed record GgufTensorSource(string Name, GgmlType Type, int[] Shape, long ByteLength, Action<Stream> WriteData);
