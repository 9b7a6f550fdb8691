using PeftSharp.Tensors;

namespace PeftSharp.IO;

/// <summary>One tensor's entry in a safetensors header. Begin/End are byte offsets relative to the data buffer
/// (which starts right after the 8-byte length and the JSON header).</summary>
internal sealed record TensorEntry(string Name, DType DType, int[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
}
