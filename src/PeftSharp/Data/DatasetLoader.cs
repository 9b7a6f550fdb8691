using System.Text;
using System.Text.Json;
using PeftSharp.Templates;

namespace PeftSharp.Data;

internal sealed class DatasetLoadOptions
{
    /// <summary>Record format; <see cref="DatasetFormat.Auto"/> detects it from the first valid record.</summary>
    public DatasetFormat Format { get; init; } = DatasetFormat.Auto;
    /// <summary>Skip malformed records instead of failing; the count is in <see cref="LoadedDataset.SkippedCount"/>.</summary>
    public bool SkipBadLines { get; init; }
}

/// <summary>The valid records of one file, and what was skipped.</summary>
internal sealed class LoadedDataset
{
    public required string File { get; init; }
    public required DatasetFormat Format { get; init; }
    public required IReadOnlyList<TrainingExample> Examples { get; init; }
    /// <summary>Records skipped because of <see cref="DatasetLoadOptions.SkipBadLines"/>.</summary>
    public int SkippedCount { get; init; }
    /// <summary>"file:line: reason" of the skipped records (the first 100).</summary>
    public IReadOnlyList<string> SkippedReasons { get; init; } = [];
}

/// <summary>
/// Reads training records from .jsonl (one JSON object per line; blank lines ignored) or .json (an array of
/// objects, or {"data": [...]}; a .json file holding one object per line is read as JSONL). A bad record is a
/// <see cref="PeftException"/> "file:line: what was wrong, what was expected", or is skipped and counted.
/// </summary>
internal static class DatasetLoader
{
    internal const int MaxReasonsKept = 100;

    public static LoadedDataset Load(string path, DatasetLoadOptions? options = null)
    {
        options ??= new DatasetLoadOptions();
        if (!System.IO.File.Exists(path)) throw new PeftException($"{path}: data file not found");
        byte[] bytes = System.IO.File.ReadAllBytes(path);
        var records = new List<(int Line, Func<JsonElement> Parse)>();
        if (IsJsonDocument(path, bytes, out var docRecords)) records = docRecords;
        else records = JsonlRecords(bytes);

        var errors = new ErrorSink(path, options.SkipBadLines);
        var examples = new List<TrainingExample>();
        DatasetFormat format = options.Format;
        int firstLine = options.Format == DatasetFormat.Auto ? 0 : -1;   // -1: format given, not detected
        foreach (var (line, parse) in records)
        {
            try
            {
                JsonElement el;
                try { el = parse(); }
                catch (JsonException e) { throw new RecordException($"invalid JSON ({Short(e)}); expected one JSON object per line"); }
                TrainingExample ex;
                try { ex = ParseRecord(el, path, line, format, firstLine); }
                catch (InvalidOperationException e)
                {
                    // System.Text.Json defers UTF-8/UTF-16 checks to reading the string: invalid UTF-8 bytes or a
                    // lone surrogate escape surface here.
                    throw new RecordException($"a key or string is not valid Unicode (invalid UTF-8 or a lone surrogate escape): {e.Message}");
                }
                if (format == DatasetFormat.Auto) { format = ex.Format; firstLine = line; }   // fixed by the first valid record
                examples.Add(ex);
            }
            catch (RecordException e) { errors.Add(line, e.Message); }
        }
        if (examples.Count == 0)
        {
            string why = errors.Count > 0 ? $"all {errors.Count} records were bad (first: {errors.Reasons[0]})" : "it holds no records";
            throw new PeftException($"{path}: no training examples: {why}");
        }
        return new LoadedDataset
        {
            File = path, Format = format, Examples = examples,
            SkippedCount = errors.Count, SkippedReasons = errors.Reasons,
        };
    }

    /// <summary>Collects bad records: throws at the first unless skipping is on.</summary>
    internal sealed class ErrorSink(string file, bool skip)
    {
        public int Count { get; private set; }
        public List<string> Reasons { get; } = [];

        public void Add(int line, string message)
        {
            string full = $"{file}:{line}: {message}";
            if (!skip) throw new PeftException(full);
            Count++;
            if (Reasons.Count < MaxReasonsKept) Reasons.Add(full);
        }
    }

    /// <summary>A problem with one record; becomes "file:line: message".</summary>
    internal sealed class RecordException(string message) : Exception(message);

    private static string Short(JsonException e)
    {
        string m = e.Message;
        int cut = m.IndexOf(" Path:", StringComparison.Ordinal);
        if (cut < 0) cut = m.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (cut > 0 ? m[..cut] : m).TrimEnd('.', ' ');
    }

    private static List<(int, Func<JsonElement>)> JsonlRecords(byte[] bytes)
    {
        var list = new List<(int, Func<JsonElement>)>();
        int start = 0, line = 1;
        if (bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF) start = 3;   // UTF-8 BOM
        while (start <= bytes.Length)
        {
            int end = Array.IndexOf(bytes, (byte)'\n', start);
            if (end < 0) end = bytes.Length;
            var slice = new ReadOnlyMemory<byte>(bytes, start, end - start);
            if (!IsBlank(slice.Span))
            {
                var mem = slice;
                list.Add((line, () =>
                {
                    using var doc = JsonDocument.Parse(mem);
                    return doc.RootElement.Clone();
                }));
            }
            line++;
            start = end + 1;
        }
        return list;
    }

    private static bool IsBlank(ReadOnlySpan<byte> s)
    {
        foreach (byte b in s) if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r')) return false;
        return true;
    }

    /// <summary>A .json file holding one array (or {"data": [...]}): its elements with their start lines.</summary>
    private static bool IsJsonDocument(string path, byte[] bytes, out List<(int, Func<JsonElement>)> records)
    {
        records = [];
        if (!path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return false;
        int i = 0;
        if (bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF) i = 3;
        while (i < bytes.Length && bytes[i] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') i++;
        if (i >= bytes.Length) return false;
        if (bytes[i] == (byte)'{')
        {
            // One object spanning the file with a "data" array, or JSONL saved as .json.
            try
            {
                using var doc = JsonDocument.Parse(bytes.AsMemory(i));
                if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("data", out var data))
                    return false;
                if (data.ValueKind != JsonValueKind.Array)
                    throw new PeftException($"{path}: \"data\" must be an array of records");
            }
            catch (JsonException) { return false; }
        }
        else if (bytes[i] != (byte)'[')
        {
            throw new PeftException($"{path}:{LineOf(bytes, i)}: expected a JSON array of records, {{\"data\": [...]}}, or one JSON object per line");
        }

        var reader = new Utf8JsonReader(bytes.AsSpan(i), new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        try
        {
            reader.Read();
            if (reader.TokenType == JsonTokenType.StartObject)
            {
                // Find "data" at depth 1.
                while (reader.Read())
                {
                    if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1 && reader.ValueTextEquals("data"))
                    {
                        reader.Read();
                        break;
                    }
                    if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) reader.Skip();
                }
            }
            if (reader.TokenType != JsonTokenType.StartArray) throw new PeftException($"{path}: expected an array of records");
            int countedTo = 0, line = 1;   // line numbers counted incrementally: files can be large
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                int at = i + (int)reader.TokenStartIndex;
                for (; countedTo < at; countedTo++) if (bytes[countedTo] == (byte)'\n') line++;
                var el = JsonElement.ParseValue(ref reader);
                int elementLine = line;
                records.Add((elementLine, () => el));
            }
        }
        catch (JsonException e)
        {
            throw new PeftException($"{path}:{(e.LineNumber ?? 0) + LineOf(bytes, i)}: invalid JSON ({Short(e)})");
        }
        return true;
    }

    private static int LineOf(byte[] bytes, int offset)
    {
        int line = 1;
        for (int k = 0; k < offset && k < bytes.Length; k++) if (bytes[k] == (byte)'\n') line++;
        return line;
    }

    private static DatasetFormat Detect(JsonElement el)
    {
        if (el.TryGetProperty("messages", out _)) return DatasetFormat.Messages;
        if (el.TryGetProperty("instruction", out _) && el.TryGetProperty("output", out _)) return DatasetFormat.Alpaca;
        if (el.TryGetProperty("prompt", out _) && el.TryGetProperty("completion", out _)) return DatasetFormat.PromptCompletion;
        if (el.TryGetProperty("text", out _)) return DatasetFormat.Text;
        return DatasetFormat.Auto;
    }

    private static string Keys(JsonElement el)
    {
        var keys = el.EnumerateObject().Select(p => "\"" + p.Name + "\"").Take(8).ToList();
        return keys.Count == 0 ? "no keys" : "keys " + string.Join(", ", keys);
    }

    private static TrainingExample ParseRecord(JsonElement el, string file, int line, DatasetFormat format, int firstLine)
    {
        if (el.ValueKind != JsonValueKind.Object)
            throw new RecordException($"expected a JSON object {DatasetFormats.Shape(format)}, found a {KindName(el.ValueKind)}");
        var detected = Detect(el);
        if (format == DatasetFormat.Auto)
        {
            if (detected == DatasetFormat.Auto)
                throw new RecordException($"unknown record format ({Keys(el)}); expected {DatasetFormats.Shape(DatasetFormat.Auto)}");
            format = detected;
        }
        else if (detected != format)
        {
            string basis = firstLine > 0 ? $"format {DatasetFormats.Name(format)}, detected at line {firstLine}" : $"format {DatasetFormats.Name(format)}";
            throw new RecordException($"expected {DatasetFormats.Shape(format)} ({basis}), found {Keys(el)}");
        }
        return format switch
        {
            DatasetFormat.Text => new TrainingExample
            {
                Format = format, File = file, Line = line, Text = RequireString(el, "text", allowEmpty: false),
            },
            DatasetFormat.PromptCompletion => new TrainingExample
            {
                Format = format, File = file, Line = line,
                Prompt = RequireString(el, "prompt", allowEmpty: true),
                Completion = RequireString(el, "completion", allowEmpty: false),
            },
            DatasetFormat.Alpaca => new TrainingExample
            {
                Format = format, File = file, Line = line,
                Instruction = RequireString(el, "instruction", allowEmpty: false),
                Input = OptionalString(el, "input"),
                Output = RequireString(el, "output", allowEmpty: false),
            },
            DatasetFormat.Messages => new TrainingExample
            {
                Format = format, File = file, Line = line, Messages = ParseMessages(el),
            },
            _ => throw new RecordException("internal: unknown format"),
        };
    }

    private static string KindName(JsonValueKind k) => k switch
    {
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        JsonValueKind.Object => "object",
        _ => k.ToString(),
    };

    private static string RequireString(JsonElement el, string key, bool allowEmpty)
    {
        if (!el.TryGetProperty(key, out var v)) throw new RecordException($"missing \"{key}\" (a string)");
        if (v.ValueKind != JsonValueKind.String) throw new RecordException($"\"{key}\" must be a string, found a {KindName(v.ValueKind)}");
        string s = v.GetString()!;
        if (!allowEmpty && s.Length == 0) throw new RecordException($"\"{key}\" is empty; expected text to train on");
        return s;
    }

    private static string? OptionalString(JsonElement el, string key)
    {
        if (!el.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String) throw new RecordException($"\"{key}\" must be a string, found a {KindName(v.ValueKind)}");
        return v.GetString();
    }

    private static List<ChatMessage> ParseMessages(JsonElement el)
    {
        var arr = el.GetProperty("messages");
        if (arr.ValueKind != JsonValueKind.Array)
            throw new RecordException($"\"messages\" must be an array of {{\"role\", \"content\"}} objects, found a {KindName(arr.ValueKind)}");
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (var m in arr.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object)
                throw new RecordException($"messages[{i}] must be an object {{\"role\", \"content\"}}, found a {KindName(m.ValueKind)}");
            if (!m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String || role.GetString()!.Length == 0)
                throw new RecordException($"messages[{i}] needs \"role\" as a non-empty string (system, user or assistant)");
            if (!m.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                throw new RecordException($"messages[{i}] needs \"content\" as a string" +
                                          (content.ValueKind == JsonValueKind.Undefined ? "" : $", found a {KindName(content.ValueKind)}"));
            Dictionary<string, object?>? extra = null;
            foreach (var p in m.EnumerateObject())
            {
                if (p.Name is "role" or "content") continue;
                extra ??= new Dictionary<string, object?>(StringComparer.Ordinal);
                extra[p.Name] = p.Value.Clone();
            }
            list.Add(new ChatMessage(role.GetString()!, content.GetString()!, extra));
            i++;
        }
        if (list.Count == 0) throw new RecordException("\"messages\" is empty; expected at least one user and one assistant message");
        if (!list.Any(m => m.Role == "assistant"))
            throw new RecordException("\"messages\" has no \"assistant\" message, so there is nothing to train on");
        return list;
    }
}
