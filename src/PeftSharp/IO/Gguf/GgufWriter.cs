using System.Text;

namespace PeftSharp.IO.Gguf;

/// <summary>Writes a GGUF version 3 file: header, metadata, tensor infos, then each tensor's data at an offset
/// aligned to <c>general.alignment</c> (32 unless the metadata says otherwise). The file appears atomically.</summary>
internal static class GgufWriter
{
    public const uint Magic = 0x46554747;     // "GGUF" read as a little-endian uint32
    public const uint Version = 3;
    public const int DefaultAlignment = 32;

    public static void Write(string path, GgufMetadata metadata, IReadOnlyList<GgufTensorSource> tensors)
    {
        int alignment = metadata.GetInt("general.alignment") ?? DefaultAlignment;
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
            throw new PeftException($"{path}: general.alignment must be a power of two, got {alignment}");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
            if (!names.Add(t.Name)) throw new PeftException($"{path}: tensor '{t.Name}' would be written twice");

        AtomicFile.Write(path, stream =>
        {
            // not disposed: disposing a BufferedStream closes the file AtomicFile still has to flush
            var buffered = new BufferedStream(stream, 1 << 20);
            using var w = new BinaryWriter(buffered, Encoding.UTF8, leaveOpen: true);
            w.Write(Magic);
            w.Write(Version);
            w.Write((ulong)tensors.Count);
            w.Write((ulong)metadata.Count);
            foreach (var (key, value) in metadata.Entries)
            {
                WriteString(w, key);
                w.Write((uint)value.Type);
                WriteValue(w, value, key);
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                WriteString(w, t.Name);
                w.Write((uint)t.Shape.Length);
                for (int i = t.Shape.Length - 1; i >= 0; i--) w.Write((ulong)t.Shape[i]);   // ggml order: innermost first
                w.Write((uint)t.Type);
                w.Write((ulong)offset);
                offset = Align(offset + t.ByteLength, alignment);
            }
            w.Flush();
            Pad(buffered, alignment);
            long dataStart = buffered.Position;
            foreach (var t in tensors)
            {
                long before = buffered.Position;
                t.WriteData(buffered);
                long written = buffered.Position - before;
                if (written != t.ByteLength)
                    throw new InvalidOperationException($"{path}: tensor '{t.Name}' wrote {written} bytes, declared {t.ByteLength}");
                Pad(buffered, alignment, dataStart);
            }
            buffered.Flush();
        });
    }

    internal static long Align(long x, int alignment) => (x + alignment - 1) / alignment * alignment;

    static void Pad(Stream s, int alignment, long origin = 0)
    {
        long rel = s.Position - origin;
        long pad = Align(rel, alignment) - rel;
        for (long i = 0; i < pad; i++) s.WriteByte(0);
    }

    static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    static void WriteValue(BinaryWriter w, GgufValue v, string key)
    {
        switch (v.Type)
        {
            case GgufValueType.Array:
                w.Write((uint)v.ElementType);
                var arr = (Array)v.Value;
                w.Write((ulong)arr.Length);
                foreach (var item in arr) WriteScalar(w, v.ElementType, item, key);
                break;
            default:
                WriteScalar(w, v.Type, v.Value, key);
                break;
        }
    }

    static void WriteScalar(BinaryWriter w, GgufValueType type, object value, string key)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write(Convert.ToByte(value)); break;
            case GgufValueType.Int8: w.Write(Convert.ToSByte(value)); break;
            case GgufValueType.UInt16: w.Write(Convert.ToUInt16(value)); break;
            case GgufValueType.Int16: w.Write(Convert.ToInt16(value)); break;
            case GgufValueType.UInt32: w.Write(Convert.ToUInt32(value)); break;
            case GgufValueType.Int32: w.Write(Convert.ToInt32(value)); break;
            case GgufValueType.Float32: w.Write(Convert.ToSingle(value)); break;
            case GgufValueType.Bool: w.Write((bool)value ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(w, (string)value); break;
            case GgufValueType.UInt64: w.Write(Convert.ToUInt64(value)); break;
            case GgufValueType.Int64: w.Write(Convert.ToInt64(value)); break;
            case GgufValueType.Float64: w.Write(Convert.ToDouble(value)); break;
            default: throw new InvalidOperationException($"metadata '{key}': cannot write a value of type {type}");
        }
    }
}
