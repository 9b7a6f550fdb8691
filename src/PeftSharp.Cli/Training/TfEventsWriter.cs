using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace PeftSharp.Cli.Training;

/// <summary>
/// Writes a TensorBoard event file (<c>events.out.tfevents.*</c>) of scalars. No maintained .NET package writes
/// them, and the format is small: a sequence of records, each <c>uint64 length</c>, <c>uint32 masked CRC-32C of the
/// length bytes</c>, the data, <c>uint32 masked CRC-32C of the data</c> (little-endian), whose data is a serialized
/// <c>tensorflow.Event</c> protobuf: wall_time (1, double), step (2, int64), file_version (3, string) or summary
/// (5: repeated Value { tag (1, string), simple_value (2, float) }). The first event carries the file version.
/// Each event is flushed, so TensorBoard shows a run while it trains.
/// </summary>
internal sealed class TfEventsWriter : IDisposable
{
    readonly FileStream _file;

    public string Path { get; }

    public TfEventsWriter(string folder, DateTimeOffset? now = null)
    {
        Directory.CreateDirectory(folder);
        var t = now ?? DateTimeOffset.UtcNow;
        // TensorBoard finds files by the "tfevents" part of the name; the rest keeps concurrent runs apart.
        Path = System.IO.Path.Combine(folder, $"events.out.tfevents.{t.ToUnixTimeSeconds()}.{Environment.MachineName}.{Environment.ProcessId}.0");
        _file = new FileStream(Path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        var e = new ProtoWriter();
        e.Double(1, t.ToUnixTimeMilliseconds() / 1000.0);
        e.String(3, "brain.Event:2");
        WriteRecord(e.ToArray());
    }

    /// <summary>One scalar at a step (tags like "train/loss" group into panels by their prefix).</summary>
    public void Scalar(string tag, double value, long step, DateTimeOffset? when = null)
    {
        var v = new ProtoWriter();
        v.String(1, tag);
        v.Float(2, (float)value);
        var summary = new ProtoWriter();
        summary.Message(1, v.ToArray());
        var e = new ProtoWriter();
        e.Double(1, (when ?? DateTimeOffset.UtcNow).ToUnixTimeMilliseconds() / 1000.0);
        e.Int64(2, step);
        e.Message(5, summary.ToArray());
        WriteRecord(e.ToArray());
    }

    void WriteRecord(byte[] data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], MaskedCrc32C(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, MaskedCrc32C(data));
        _file.Write(header);
        _file.Write(data);
        _file.Write(footer);
        _file.Flush();
    }

    /// <summary>CRC-32C (Castagnoli), as TFRecord uses it.</summary>
    public static uint Crc32C(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in bytes) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    /// <summary>TFRecord's masked CRC: rotate right by 15 and add a constant, so CRCs of CRCs stay well spread.</summary>
    public static uint MaskedCrc32C(ReadOnlySpan<byte> bytes)
    {
        uint crc = Crc32C(bytes);
        return unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);
    }

    public void Dispose() => _file.Dispose();

    /// <summary>The few protobuf wire-format encodings an Event needs.</summary>
    sealed class ProtoWriter
    {
        readonly MemoryStream _s = new();

        public byte[] ToArray() => _s.ToArray();

        void Tag(int field, int wireType) => Varint((ulong)(field << 3 | wireType));

        void Varint(ulong v)
        {
            for (; v >= 0x80; v >>= 7) _s.WriteByte((byte)(v | 0x80));
            _s.WriteByte((byte)v);
        }

        public void Double(int field, double v)
        {
            Tag(field, 1);
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteDoubleLittleEndian(b, v);
            _s.Write(b);
        }

        public void Float(int field, float v)
        {
            Tag(field, 5);
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteSingleLittleEndian(b, v);
            _s.Write(b);
        }

        public void Int64(int field, long v)
        {
            Tag(field, 0);
            Varint((ulong)v);
        }

        public void String(int field, string v) => Message(field, Encoding.UTF8.GetBytes(v));

        public void Message(int field, byte[] bytes)
        {
            Tag(field, 2);
            Varint((ulong)bytes.Length);
            _s.Write(bytes);
        }
    }
}
