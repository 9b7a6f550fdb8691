using System.Buffers.Binary;
using System.Text;

namespace PeftSharp.IO.Gguf;

/// <summary>
/// An open GGUF file: its metadata and tensor infos, validated on open, and reads of tensor bytes. Every count and
/// length in the header is checked against the bytes left in the file before anything is allocated, so a truncated or
/// hostile file gets a <see cref="PeftException"/> naming the file and field, never an out-of-range read or a huge
/// allocation.
/// </summary>
internal sealed class GgufFile : IDisposable
{
    const int MaxDims = 4;                    // GGML_MAX_DIMS

    readonly FileStream _file;
    readonly Dictionary<string, GgufTensorInfo> _byName = new(StringComparer.Ordinal);

    public string Path { get; }
    public uint Version { get; }
    public GgufMetadata Metadata { get; }
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }
    public int Alignment { get; }
    /// <summary>File offset of the tensor data section.</summary>
    public long DataStart { get; }

    GgufFile(string path, FileStream file)
    {
        Path = path;
        _file = file;
        var r = new HeaderReader(file, path);
        uint magic = r.U32("magic");
        if (magic != GgufWriter.Magic)
            throw new PeftException($"{path}: not a GGUF file (magic bytes {magic:X8}, expected 'GGUF' = {GgufWriter.Magic:X8})");
        Version = r.U32("version");
        if (Version is not (2 or 3))
            throw new PeftException($"{path}: GGUF version {Version} is not supported (expected 3, or 2)");
        ulong tensorCount = r.U64("tensor_count");
        ulong kvCount = r.U64("metadata_kv_count");
        // the smallest metadata entry is 8 (key length) + 4 (type) + 1 bytes; the smallest tensor info 8 + 4 + 8 + 4 + 8
        r.CheckCount(kvCount, 13, "metadata_kv_count");
        r.CheckCount(tensorCount, 32, "tensor_count");

        Metadata = new GgufMetadata(path);
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = r.String($"metadata key #{i}");
            var type = r.U32($"metadata '{key}' type");
            Metadata.AddRead(key, r.Value(type, key));
        }
        Alignment = Metadata.GetInt("general.alignment") ?? GgufWriter.DefaultAlignment;
        if (Alignment <= 0 || (Alignment & (Alignment - 1)) != 0)
            throw new PeftException($"{path}: general.alignment = {Alignment} is not a power of two");

        var infos = new List<GgufTensorInfo>((int)Math.Min(tensorCount, 4096));
        for (ulong i = 0; i < tensorCount; i++)
        {
            string name = r.String($"tensor #{i} name");
            uint nDims = r.U32($"tensor '{name}' n_dims");
            if (nDims is 0 or > MaxDims) throw new PeftException($"{path}: tensor '{name}' has n_dims {nDims}, expected 1 to {MaxDims}");
            var dims = new long[nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++)
            {
                ulong ne = r.U64($"tensor '{name}' ne[{d}]");
                if (ne is 0 or > int.MaxValue) throw new PeftException($"{path}: tensor '{name}' ne[{d}] = {ne} is out of range (1 to {int.MaxValue})");
                dims[d] = (long)ne;
                elements = elements > long.MaxValue / (long)ne
                    ? throw new PeftException($"{path}: tensor '{name}' has more elements than fit in 64 bits")
                    : elements * (long)ne;
            }
            uint type = r.U32($"tensor '{name}' type");
            if (!GgmlTypeInfo.TryLayout(type, out int be, out int bb))
                throw new PeftException($"{path}: tensor '{name}' has unknown ggml type {type}");
            if (dims[0] % be != 0)
                throw new PeftException($"{path}: tensor '{name}' ne[0] = {dims[0]} is not a multiple of {GgmlTypeInfo.Name(type)}'s block size {be}");
            ulong offset = r.U64($"tensor '{name}' offset");
            if (offset % (ulong)Alignment != 0)
                throw new PeftException($"{path}: tensor '{name}' offset {offset} is not a multiple of the alignment {Alignment}");
            long bytes = elements / be > long.MaxValue / bb ? long.MaxValue : elements / be * bb;
            var info = new GgufTensorInfo(name, (GgmlType)type, dims, offset > long.MaxValue ? long.MaxValue : (long)offset, bytes);
            if (!_byName.TryAdd(name, info)) throw new PeftException($"{path}: tensor '{name}' appears twice");
            infos.Add(info);
        }
        DataStart = GgufWriter.Align(r.Position, Alignment);
        long dataBytes = file.Length - DataStart;
        foreach (var t in infos)
            if (t.Offset > dataBytes || t.ByteLength > dataBytes - t.Offset)
                throw new PeftException($"{path}: tensor '{t.Name}' data [{t.Offset}, +{t.ByteLength}) is outside the data section ({Math.Max(0, dataBytes)} bytes; the file is truncated or the offset is wrong)");
        Tensors = infos;
    }

    /// <summary>Opens and validates a GGUF file.</summary>
    public static GgufFile Open(string path)
    {
        if (!File.Exists(path)) throw new PeftException($"{path}: GGUF file not found");
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess);
        try { return new GgufFile(path, fs); }
        catch { fs.Dispose(); throw; }
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public GgufTensorInfo Tensor(string name) => _byName.TryGetValue(name, out var t) ? t
        : throw new PeftException($"{Path}: tensor '{name}' not found");

    /// <summary>Reads a tensor's raw bytes into <paramref name="dst"/> (exactly its byte length).</summary>
    public void ReadBytes(GgufTensorInfo t, Span<byte> dst)
    {
        if (dst.Length != t.ByteLength) throw new ArgumentException($"buffer of {dst.Length} bytes for a tensor of {t.ByteLength}");
        int n = 0;
        while (n < dst.Length)
        {
            int got = RandomAccess.Read(_file.SafeFileHandle, dst[n..], DataStart + t.Offset + n);
            if (got <= 0) throw new PeftException($"{Path}: tensor '{t.Name}': the file ended while reading its data");
            n += got;
        }
    }

    public void Dispose() => _file.Dispose();

    /// <summary>Sequential little-endian reads of the header, each checked against the bytes left.</summary>
    sealed class HeaderReader(FileStream file, string path)
    {
        readonly BufferedStream _s = new(file, 1 << 16);
        readonly long _length = file.Length;
        readonly byte[] _scratch = new byte[8];
        public long Position { get; private set; }

        long Remaining => _length - Position;

        ReadOnlySpan<byte> Take(int n, string field)
        {
            if (Remaining < n) throw Truncated(field);
            _s.ReadExactly(_scratch, 0, n);
            Position += n;
            return _scratch.AsSpan(0, n);
        }

        PeftException Truncated(string field) => new($"{path}: file is truncated while reading {field} (at byte {Position} of {_length})");

        public uint U32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, field));
        public ulong U64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, field));

        /// <summary>A count of items of at least <paramref name="minBytes"/> each must fit in what is left.</summary>
        public void CheckCount(ulong count, int minBytes, string field)
        {
            if (count > (ulong)Math.Max(0, Remaining) / (ulong)minBytes)
                throw new PeftException($"{path}: {field} = {count} cannot fit in the {Remaining} bytes left in the file");
        }

        public string String(string field)
        {
            ulong len = U64(field + " length");
            if (len > (ulong)Remaining) throw new PeftException($"{path}: {field} has length {len}, more than the {Remaining} bytes left in the file");
            if (len > int.MaxValue) throw new PeftException($"{path}: {field} has length {len}, longer than a string can be");
            var bytes = new byte[(int)len];
            _s.ReadExactly(bytes);
            Position += (long)len;
            try { return new UTF8Encoding(false, true).GetString(bytes); }
            catch (DecoderFallbackException) { throw new PeftException($"{path}: {field} is not valid UTF-8"); }
        }

        public GgufValue Value(uint type, string key)
        {
            if (type == (uint)GgufValueType.Array)
            {
                uint et = U32($"metadata '{key}' element type");
                if (et == (uint)GgufValueType.Array) throw new PeftException($"{path}: metadata '{key}' is an array of arrays (not supported)");
                if (!Enum.IsDefined(typeof(GgufValueType), et)) throw new PeftException($"{path}: metadata '{key}' has unknown element type {et}");
                var elementType = (GgufValueType)et;
                ulong count = U64($"metadata '{key}' count");
                CheckCount(count, ScalarSize(elementType), $"metadata '{key}' count");
                return new GgufValue(GgufValueType.Array, Array(elementType, (int)count, key), elementType);
            }
            if (!Enum.IsDefined(typeof(GgufValueType), type)) throw new PeftException($"{path}: metadata '{key}' has unknown value type {type}");
            return new GgufValue((GgufValueType)type, Scalar((GgufValueType)type, key));
        }

        /// <summary>Fixed size of a scalar; 8 (the length prefix) for a string, the least it can take.</summary>
        static int ScalarSize(GgufValueType t) => t switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            _ => 8,
        };

        object Array(GgufValueType t, int n, string key)
        {
            string f = $"metadata '{key}'";
            switch (t)
            {
                case GgufValueType.String: { var a = new string[n]; for (int i = 0; i < n; i++) a[i] = String($"{f}[{i}]"); return a; }
                case GgufValueType.Float32: { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = BitConverter.Int32BitsToSingle((int)U32(f)); return a; }
                case GgufValueType.Int32: { var a = new int[n]; for (int i = 0; i < n; i++) a[i] = (int)U32(f); return a; }
                case GgufValueType.UInt32: { var a = new uint[n]; for (int i = 0; i < n; i++) a[i] = U32(f); return a; }
                default: { var a = new object[n]; for (int i = 0; i < n; i++) a[i] = Scalar(t, $"{key}[{i}]"); return a; }
            }
        }

        object Scalar(GgufValueType t, string key)
        {
            string f = $"metadata '{key}'";
            return t switch
            {
                GgufValueType.UInt8 => Take(1, f)[0],
                GgufValueType.Int8 => (sbyte)Take(1, f)[0],
                GgufValueType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, f)),
                GgufValueType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(Take(2, f)),
                GgufValueType.UInt32 => U32(f),
                GgufValueType.Int32 => (int)U32(f),
                GgufValueType.Float32 => BitConverter.Int32BitsToSingle((int)U32(f)),
                GgufValueType.Bool => Take(1, f)[0] switch
                {
                    0 => false, 1 => true,
                    var b => throw new PeftException($"{path}: {f} is a bool with byte value {b}"),
                },
                GgufValueType.String => String(f),
                GgufValueType.UInt64 => U64(f),
                GgufValueType.Int64 => (long)U64(f),
                GgufValueType.Float64 => BitConverter.Int64BitsToDouble((long)U64(f)),
                _ => throw new PeftException($"{path}: {f} has unsupported type {t}"),
            };
        }
    }
}
