using System.Text.Json;
using PeftSharp.Tensors;

namespace PeftSharp.IO;

/// <summary>
/// Parses and validates a safetensors JSON header against the size of the data buffer that follows it.
/// Rules follow the reference reader (huggingface/safetensors): every entry has dtype/shape/data_offsets,
/// shape × dtype size = end − begin, and the entries tile the buffer exactly (no overlap, no gap, no trailing bytes).
/// </summary>
internal static class SafetensorsHeader
{
    /// <summary>The reference reader refuses headers above 100 MB; a larger length means a corrupt or foreign file.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Every dtype the format defines; the ones outside <see cref="DType"/> are refused by name.</summary>
    static readonly string[] s_specDtypes =
        ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"];

    public static string SupportedDtypes => "F32, BF16, F16, U8, I32, I64";

    public static (List<TensorEntry> Entries, Dictionary<string, string> Metadata) Parse(
        ReadOnlySpan<byte> json, long bufferLength, string file)
    {
        if (!System.Text.Unicode.Utf8.IsValid(json))
            throw new PeftException($"{file}: safetensors header is not valid UTF-8");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new PeftException($"{file}: safetensors header is not valid JSON ({e.Message})");
        }

        using (doc)
        {
            try { return ParseRoot(doc.RootElement, bufferLength, file); }
            catch (InvalidOperationException e)
            {
                // The bytes are valid UTF-8, but an escape such as a lone high surrogate is not valid UTF-16.
                throw new PeftException($"{file}: safetensors header holds a key or string that is not valid Unicode ({e.Message})");
            }
        }
    }

    static (List<TensorEntry> Entries, Dictionary<string, string> Metadata) ParseRoot(JsonElement root, long bufferLength, string file)
    {
        {
            if (root.ValueKind != JsonValueKind.Object)
                throw new PeftException($"{file}: safetensors header must be a JSON object, found {root.ValueKind}");

            var entries = new List<TensorEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            bool sawMetadata = false;

            foreach (var prop in root.EnumerateObject())
            {
                string name = prop.Name;
                if (name == "__metadata__")
                {
                    if (sawMetadata) throw new PeftException($"{file}: duplicate \"__metadata__\" in safetensors header");
                    sawMetadata = true;
                    ParseMetadata(prop.Value, metadata, file);
                    continue;
                }
                if (!seen.Add(name))
                    throw new PeftException($"{file}: tensor '{name}' appears twice in the safetensors header");
                entries.Add(ParseEntry(name, prop.Value, file));
            }

            CheckTiling(entries, bufferLength, file);
            return (entries, metadata);
        }
    }

    static void ParseMetadata(JsonElement value, Dictionary<string, string> metadata, string file)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw new PeftException($"{file}: \"__metadata__\" must be an object of strings, found {value.ValueKind}");
        foreach (var kv in value.EnumerateObject())
        {
            if (kv.Value.ValueKind != JsonValueKind.String)
                throw new PeftException(
                    $"{file}: \"__metadata__\".\"{kv.Name}\" must be a string, found {kv.Value.ValueKind}");
            if (!metadata.TryAdd(kv.Name, kv.Value.GetString()!))
                throw new PeftException($"{file}: \"__metadata__\" has key \"{kv.Name}\" twice");
        }
    }

    static TensorEntry ParseEntry(string name, JsonElement value, string file)
    {
        string where = $"{file}: tensor '{name}'";
        if (value.ValueKind != JsonValueKind.Object)
            throw new PeftException($"{where}: entry must be an object with dtype, shape, data_offsets; found {value.ValueKind}");

        if (!value.TryGetProperty("dtype", out var dtypeEl))
            throw new PeftException($"{where}: missing \"dtype\"");
        if (dtypeEl.ValueKind != JsonValueKind.String)
            throw new PeftException($"{where}: \"dtype\" must be a string, found {dtypeEl.ValueKind}");
        string dtypeName = dtypeEl.GetString()!;
        if (!DTypeInfo.TryParseSafetensors(dtypeName, out var dtype))
        {
            string why = Array.IndexOf(s_specDtypes, dtypeName) >= 0 ? "unsupported dtype" : "unknown dtype";
            throw new PeftException($"{where}: {why} \"{dtypeName}\" (supported: {SupportedDtypes})");
        }

        if (!value.TryGetProperty("shape", out var shapeEl))
            throw new PeftException($"{where}: missing \"shape\"");
        if (shapeEl.ValueKind != JsonValueKind.Array)
            throw new PeftException($"{where}: \"shape\" must be an array of non-negative integers, found {shapeEl.ValueKind}");
        var shape = new int[shapeEl.GetArrayLength()];
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim))
                throw new PeftException($"{where}: \"shape\"[{i}] must be an integer, found {d.GetRawText()}");
            if (dim < 0)
                throw new PeftException($"{where}: \"shape\"[{i}] is negative ({dim})");
            if (dim > int.MaxValue)
                throw new PeftException($"{where}: \"shape\"[{i}] = {dim} exceeds the supported dimension size {int.MaxValue}");
            shape[i++] = (int)dim;
        }

        if (!value.TryGetProperty("data_offsets", out var offEl))
            throw new PeftException($"{where}: missing \"data_offsets\"");
        if (offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw new PeftException($"{where}: \"data_offsets\" must be [begin, end], found {offEl.GetRawText()}");
        long begin = ReadOffset(offEl[0], where, "begin");
        long end = ReadOffset(offEl[1], where, "end");
        if (begin > end)
            throw new PeftException($"{where}: \"data_offsets\" begin {begin} > end {end}");

        long expectedBytes;
        try
        {
            expectedBytes = checked(Tensor.CountElements(shape) * dtype.Size());
        }
        catch (OverflowException)
        {
            throw new PeftException($"{where}: shape [{string.Join(", ", shape)}] is too large");
        }
        if (expectedBytes != end - begin)
            throw new PeftException(
                $"{where}: shape [{string.Join(", ", shape)}] of {dtypeName} needs {expectedBytes} bytes, " +
                $"but data_offsets [{begin}, {end}] span {end - begin}");

        return new TensorEntry(name, dtype, shape, begin, end);
    }

    static long ReadOffset(JsonElement e, string where, string which)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v))
            throw new PeftException($"{where}: \"data_offsets\" {which} must be an integer, found {e.GetRawText()}");
        if (v < 0)
            throw new PeftException($"{where}: \"data_offsets\" {which} is negative ({v})");
        return v;
    }

    /// <summary>Sorted by begin, each tensor must start where the previous ended and the last must end at the buffer end.</summary>
    static void CheckTiling(List<TensorEntry> entries, long bufferLength, string file)
    {
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long expected = 0;
        TensorEntry? previous = null;
        foreach (var e in sorted)
        {
            if (e.End > bufferLength)
                throw new PeftException(
                    $"{file}: tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] run past the end of the data buffer ({bufferLength} bytes)");
            if (e.Begin < expected)
                throw new PeftException(
                    $"{file}: tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] overlap tensor '{previous!.Name}' [{previous.Begin}, {previous.End}]");
            if (e.Begin > expected)
                throw new PeftException(
                    $"{file}: tensor '{e.Name}': data_offsets begin {e.Begin} leaves a gap after byte {expected}" +
                    (previous is null ? " (the first tensor must start at 0)" : $" (end of tensor '{previous.Name}')"));
            expected = e.End;
            previous = e;
        }
        if (expected != bufferLength)
            throw new PeftException(
                $"{file}: the tensors cover {expected} bytes but the data buffer holds {bufferLength} (truncated or trailing data)");
    }
}
