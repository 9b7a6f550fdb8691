using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using PeftSharp.Tensors;

namespace PeftSharp.IO;

/// <summary>A memory-mapped .safetensors file; tensors are views into the mapping (valid while the file is open).</summary>
/// <remarks>Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data buffer.</remarks>
internal sealed unsafe class SafetensorsFile : IDisposable
{
    readonly MemoryMappedFile _map;
    readonly MemoryMappedViewAccessor _view;
    readonly List<TensorEntry> _entries;
    readonly Dictionary<string, TensorEntry> _byName;
    readonly Dictionary<string, string> _metadata;
    byte* _base;        // start of the mapping (the u64 header length)
    readonly long _dataStart; // 8 + N

    SafetensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePtr, long dataStart,
        List<TensorEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePtr;
        _dataStart = dataStart;
        _entries = entries;
        _metadata = metadata;
        _byName = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        foreach (var e in entries) _byName[e.Name] = e;
    }

    /// <summary>Maps and validates the file; malformed input throws <see cref="PeftException"/> naming file and tensor.</summary>
    public static SafetensorsFile Open(string path)
    {
        if (Directory.Exists(path)) throw new PeftException($"{path}: is a folder, expected a .safetensors file");
        if (!File.Exists(path)) throw new PeftException($"{path}: safetensors file not found");

        // The size of the file itself: in a Hugging Face cache the path is a symbolic link to a blob, and FileInfo
        // of a link reports the link's own length.
        long fileLength;
        using (var probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete)) fileLength = probe.Length;
        if (fileLength < 8)
            throw new PeftException($"{path}: {fileLength} bytes is too short for a safetensors file (needs an 8-byte header length)");

        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        byte* basePtr = null;
        try
        {
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete))
                map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            basePtr += view.PointerOffset;

            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(basePtr, 8));
            if (headerLength > SafetensorsHeader.MaxHeaderBytes)
                throw new PeftException(
                    $"{path}: header length {headerLength} is larger than the {SafetensorsHeader.MaxHeaderBytes}-byte limit (not a safetensors file?)");
            if ((long)headerLength > fileLength - 8)
                throw new PeftException(
                    $"{path}: header length {headerLength} runs past the end of the {fileLength}-byte file (truncated?)");

            long dataStart = 8 + (long)headerLength;
            var json = new ReadOnlySpan<byte>(basePtr + 8, (int)headerLength);
            var (entries, metadata) = SafetensorsHeader.Parse(json, fileLength - dataStart, path);
            return new SafetensorsFile(path, map, view, basePtr, dataStart, entries, metadata);
        }
        catch
        {
            if (basePtr != null) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map?.Dispose();
            throw;
        }
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata => _metadata;
    /// <summary>Entries in header order.</summary>
    public IReadOnlyList<TensorEntry> Entries => _entries;
    public bool Contains(string name) => _byName.ContainsKey(name);

    public TensorEntry Entry(string name) => _byName.TryGetValue(name, out var e)
        ? e
        : throw new PeftException($"{Path}: no tensor named '{name}'");

    /// <summary>A borrowed view (no copy) of the named tensor; valid until this file is disposed.</summary>
    public Tensor Get(string name)
    {
        var e = Entry(name);
        if (_base == null) throw new ObjectDisposedException(Path);
        return new Tensor(e.DType, e.Shape, _base + _dataStart + e.Begin);
    }

    public void Dispose()
    {
        if (_base == null) return;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
