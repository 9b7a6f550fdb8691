using System.Text;
using System.Text.Json;
using PeftSharp.Tensors;

namespace PeftSharp.IO;

internal static unsafe class SafetensorsWriter
{
    /// <summary>Writes one file atomically (temp file in the same folder, then rename).</summary>
    /// <remarks>Header keys: "__metadata__" first (if any), then tensors in the given order, data laid out in the same
    /// order; the JSON is padded with spaces to a multiple of 8 bytes as the reference writer does, so the data buffer
    /// starts 8-byte aligned.</remarks>
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = CheckTensors(tensors, path);
        byte[] header = BuildHeader(list, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> len = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            stream.Write(len);
            stream.Write(header);
            foreach (var (_, t) in list) WriteBytes(stream, t.Data, t.ByteLength);
        });
    }

    /// <summary>Writes model-0000i-of-0000n.safetensors shards of at most maxShardBytes plus model.safetensors.index.json
    /// (a single model.safetensors when it fits), atomically.</summary>
    /// <remarks>Greedy in the given order like huggingface_hub's splitter: a tensor that would overflow the current shard
    /// starts the next one; a tensor larger than the limit gets a shard of its own. Files of a previous save that the new
    /// layout does not use (old shards, a stale index or single file) are removed afterwards, so the folder never holds
    /// two competing sets of weights.</remarks>
    public static void WriteSharded(string dir, IEnumerable<(string Name, Tensor Tensor)> tensors, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (maxShardBytes <= 0) throw new PeftException($"{dir}: max shard size must be positive, got {maxShardBytes}");
        Directory.CreateDirectory(dir);
        var list = CheckTensors(tensors, dir);

        var shards = new List<List<(string Name, Tensor Tensor)>> { new() };
        long current = 0, total = 0;
        foreach (var item in list)
        {
            long size = item.Tensor.ByteLength;
            if (shards[^1].Count > 0 && current + size > maxShardBytes)
            {
                shards.Add(new());
                current = 0;
            }
            shards[^1].Add(item);
            current += size;
            total += size;
        }

        string single = Path.Combine(dir, SafetensorsCheckpoint.SingleFileName);
        string index = Path.Combine(dir, SafetensorsCheckpoint.IndexFileName);
        var written = new HashSet<string>(StringComparer.Ordinal);
        if (shards.Count == 1)
        {
            Write(single, shards[0], metadata);
            written.Add(SafetensorsCheckpoint.SingleFileName);
        }
        else
        {
            var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
            for (int i = 0; i < shards.Count; i++)
            {
                string name = ShardName(i + 1, shards.Count);
                Write(Path.Combine(dir, name), shards[i], metadata);
                written.Add(name);
                foreach (var (n, _) in shards[i]) weightMap[n] = name;
            }
            AtomicFile.Write(index, s => WriteIndex(s, total, weightMap));
            written.Add(SafetensorsCheckpoint.IndexFileName);
        }
        RemoveStale(dir, written);
    }

    /// <summary>The transformers shard name: model-00001-of-00003.safetensors.</summary>
    public static string ShardName(int index, int count) => $"model-{index:D5}-of-{count:D5}.safetensors";

    static void RemoveStale(string dir, HashSet<string> keep)
    {
        var stale = new List<string>();
        foreach (var f in Directory.EnumerateFiles(dir, "model-*-of-*.safetensors"))
            if (IsShardName(Path.GetFileName(f))) stale.Add(f);
        stale.Add(Path.Combine(dir, SafetensorsCheckpoint.SingleFileName));
        stale.Add(Path.Combine(dir, SafetensorsCheckpoint.IndexFileName));
        foreach (var f in stale)
            if (!keep.Contains(Path.GetFileName(f)) && File.Exists(f)) File.Delete(f);
    }

    static bool IsShardName(string n) =>
        n.Length == "model-00001-of-00001.safetensors".Length && n.StartsWith("model-") && n.EndsWith(".safetensors")
        && n.Substring(6, 5).All(char.IsAsciiDigit) && n.Substring(11, 4) == "-of-" && n.Substring(15, 5).All(char.IsAsciiDigit);

    static void WriteIndex(Stream s, long totalSize, SortedDictionary<string, string> weightMap)
    {
        using var w = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteStartObject("metadata");
        w.WriteNumber("total_size", totalSize);
        w.WriteEndObject();
        w.WriteStartObject("weight_map");
        foreach (var (k, v) in weightMap) w.WriteString(k, v);
        w.WriteEndObject();
        w.WriteEndObject();
        w.Flush();
        s.WriteByte((byte)'\n');
    }

    static List<(string Name, Tensor Tensor)> CheckTensors(IEnumerable<(string Name, Tensor Tensor)> tensors, string target)
    {
        var list = tensors.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, t) in list)
        {
            if (string.IsNullOrEmpty(name)) throw new PeftException($"{target}: a tensor has an empty name");
            if (name == "__metadata__") throw new PeftException($"{target}: \"__metadata__\" is reserved and cannot name a tensor");
            if (t is null) throw new PeftException($"{target}: tensor '{name}' is null");
            if (!seen.Add(name)) throw new PeftException($"{target}: tensor '{name}' is given twice");
        }
        return list;
    }

    static byte[] BuildHeader(List<(string Name, Tensor Tensor)> list, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in list)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", t.DType.SafetensorsName());
                w.WriteStartArray("shape");
                foreach (int d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + t.ByteLength);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.ByteLength;
            }
            w.WriteEndObject();
        }
        int n = (int)ms.Length;
        int padded = (n + 7) / 8 * 8;
        for (int i = n; i < padded; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    static void WriteBytes(Stream s, byte* data, long length)
    {
        const int chunk = 1 << 30;
        for (long done = 0; done < length; done += chunk)
            s.Write(new ReadOnlySpan<byte>(data + done, (int)Math.Min(chunk, length - done)));
    }
}
