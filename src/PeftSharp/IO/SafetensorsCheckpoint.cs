using System.Text.Json;
using PeftSharp.Tensors;

namespace PeftSharp.IO;

/// <summary>A model folder's weights: one model.safetensors or shards listed by model.safetensors.index.json.</summary>
/// <remarks>Like transformers, a single model.safetensors wins over an index when both are present.</remarks>
internal sealed class SafetensorsCheckpoint : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    readonly List<SafetensorsFile> _files;
    /// <summary>Tensor name → the file that holds it, in index (or header) order.</summary>
    readonly Dictionary<string, SafetensorsFile> _owner;
    readonly List<string> _names;
    readonly string _source;

    SafetensorsCheckpoint(string source, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> owner, List<string> names)
    {
        _source = source;
        _files = files;
        _owner = owner;
        _names = names;
    }

    public static SafetensorsCheckpoint OpenDirectory(string dir)
    {
        if (!Directory.Exists(dir)) throw new PeftException($"{dir}: model folder not found");
        string single = Path.Combine(dir, SingleFileName);
        string index = Path.Combine(dir, IndexFileName);
        if (File.Exists(single)) return FromSingle(single);
        if (File.Exists(index)) return FromIndex(dir, index);
        throw new PeftException($"{dir}: no {SingleFileName} and no {IndexFileName} in the folder");
    }

    static SafetensorsCheckpoint FromSingle(string path)
    {
        var file = SafetensorsFile.Open(path);
        var owner = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var names = new List<string>();
        foreach (var e in file.Entries)
        {
            owner[e.Name] = file;
            names.Add(e.Name);
        }
        return new SafetensorsCheckpoint(path, [file], owner, names);
    }

    static SafetensorsCheckpoint FromIndex(string dir, string indexPath)
    {
        var weightMap = ReadWeightMap(indexPath);
        var byShard = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var owner = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var names = new List<string>();
        try
        {
            foreach (var (tensor, shard) in weightMap)
            {
                if (!byShard.TryGetValue(shard, out var file))
                {
                    string shardPath = Path.Combine(dir, shard);
                    if (!File.Exists(shardPath))
                        throw new PeftException($"{indexPath}: weight_map names shard \"{shard}\" (for tensor '{tensor}') but {shardPath} does not exist");
                    file = SafetensorsFile.Open(shardPath);
                    byShard[shard] = file;
                }
                if (!file.Contains(tensor))
                    throw new PeftException($"{file.Path}: has no tensor '{tensor}', which {indexPath} places in this shard");
                owner[tensor] = file;
                names.Add(tensor);
            }
        }
        catch
        {
            foreach (var f in byShard.Values) f.Dispose();
            throw;
        }
        return new SafetensorsCheckpoint(indexPath, byShard.Values.ToList(), owner, names);
    }

    /// <summary>Reads {"metadata": {...}, "weight_map": {tensor: shard file}} in file order.</summary>
    static List<(string Tensor, string Shard)> ReadWeightMap(string indexPath)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException e)
        {
            throw new PeftException($"{indexPath}: not valid JSON ({e.Message})");
        }
        using (doc)
        {
            try { return WeightMap(doc.RootElement, indexPath); }
            catch (InvalidOperationException e)
            {
                // Found by fuzzing: JsonDocument accepts invalid UTF-8 inside a string and fails only when it is read.
                throw new PeftException($"{indexPath}: a key or string is not valid UTF-8 or Unicode ({e.Message})");
            }
        }
    }

    static List<(string Tensor, string Shard)> WeightMap(JsonElement root, string indexPath)
    {
        {
            if (root.ValueKind != JsonValueKind.Object)
                throw new PeftException($"{indexPath}: expected a JSON object with \"weight_map\"");
            if (!root.TryGetProperty("weight_map", out var map))
                throw new PeftException($"{indexPath}: missing \"weight_map\"");
            if (map.ValueKind != JsonValueKind.Object)
                throw new PeftException($"{indexPath}: \"weight_map\" must be an object of tensor name → shard file, found {map.ValueKind}");
            var result = new List<(string, string)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in map.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new PeftException($"{indexPath}: \"weight_map\".\"{p.Name}\" must be a file name string, found {p.Value.ValueKind}");
                string shard = p.Value.GetString()!;
                // Shards live in the model folder; a path would let an index reach outside it.
                if (shard.Length == 0 || shard.Contains('/') || shard.Contains('\\') || shard is "." or "..")
                    throw new PeftException($"{indexPath}: \"weight_map\".\"{p.Name}\" = \"{shard}\" must be a plain file name in the model folder");
                if (!seen.Add(p.Name))
                    throw new PeftException($"{indexPath}: tensor '{p.Name}' appears twice in \"weight_map\"");
                result.Add((p.Name, shard));
            }
            return result;
        }
    }

    /// <summary>Tensor names in index (or header) order.</summary>
    public IEnumerable<string> Names => _names;
    public bool Contains(string name) => _owner.ContainsKey(name);
    public TensorEntry Entry(string name) => Owner(name).Entry(name);
    /// <summary>A borrowed view (no copy); valid until the checkpoint is disposed.</summary>
    public Tensor Get(string name) => Owner(name).Get(name);
    /// <summary>The files backing this checkpoint (one, or each shard).</summary>
    public IReadOnlyList<string> FilePaths => _files.Select(f => f.Path).ToList();

    SafetensorsFile Owner(string name) => _owner.TryGetValue(name, out var f)
        ? f
        : throw new PeftException($"{_source}: checkpoint has no tensor '{name}'");

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
