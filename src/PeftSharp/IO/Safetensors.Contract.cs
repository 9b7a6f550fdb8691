// CONTRACT STUBS — the IO work fills these bodies (and may split files) without changing public signatures.
using PeftSharp.Tensors;

namespace PeftSharp.IO;

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record TensorEntry(string Name, DType DType, int[] Shape, long Begin, long End);

/// <summary>A memory-mapped .safetensors file; tensors are views into the mapping (valid while the file is open).</summary>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Maps and validates the file; malformed input throws <see cref="PeftException"/> naming file and tensor.</summary>
    public static SafetensorsFile Open(string path) => throw new NotImplementedException();
    public string Path => throw new NotImplementedException();
    public IReadOnlyDictionary<string, string> Metadata => throw new NotImplementedException();
    public IReadOnlyList<TensorEntry> Entries => throw new NotImplementedException();
    public bool Contains(string name) => throw new NotImplementedException();
    /// <summary>A borrowed view (no copy) of the named tensor.</summary>
    public Tensor Get(string name) => throw new NotImplementedException();
    public void Dispose() { }
}

/// <summary>A model folder's weights: one model.safetensors or shards listed by model.safetensors.index.json.</summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    public static SafetensorsCheckpoint OpenDirectory(string dir) => throw new NotImplementedException();
    public IEnumerable<string> Names => throw new NotImplementedException();
    public bool Contains(string name) => throw new NotImplementedException();
    public TensorEntry Entry(string name) => throw new NotImplementedException();
    public Tensor Get(string name) => throw new NotImplementedException();
    public void Dispose() { }
}

public static class SafetensorsWriter
{
    /// <summary>Writes one file atomically (temp file in the same folder, then rename).</summary>
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        => throw new NotImplementedException();

    /// <summary>Writes model-0000i-of-0000n.safetensors shards of at most maxShardBytes plus model.safetensors.index.json
    /// (a single model.safetensors when it fits), atomically.</summary>
    public static void WriteSharded(string dir, IEnumerable<(string Name, Tensor Tensor)> tensors, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null) => throw new NotImplementedException();
}
