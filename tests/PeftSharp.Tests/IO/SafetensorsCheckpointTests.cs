using System.Text.Json;
using PeftSharp.IO;
using PeftSharp.Tensors;

namespace PeftSharp.Tests.IO;

public unsafe class SafetensorsCheckpointTests : IDisposable
{
    readonly ScratchDir _scratch = new();
    public void Dispose() => _scratch.Dispose();

    /// <summary>Five F32 tensors of 4, 8, 12, 16, 20 floats (16..80 bytes), each filled with a distinct ramp.</summary>
    static List<(string Name, Tensor Tensor)> MakeTensors()
    {
        var list = new List<(string, Tensor)>();
        for (int i = 0; i < 5; i++)
        {
            var t = new Tensor(DType.F32, i + 1, 4);
            for (int j = 0; j < t.ElementCount; j++) t.Floats[j] = 100 * i + j + 0.5f;
            list.Add(($"layer.{i}.weight", t));
        }
        return list;
    }

    static void AssertSameContent(SafetensorsCheckpoint ckpt, List<(string Name, Tensor Tensor)> expected)
    {
        Assert.Equal(expected.Select(e => e.Name).Order(StringComparer.Ordinal), ckpt.Names.Order(StringComparer.Ordinal));
        foreach (var (name, t) in expected)
        {
            Assert.True(ckpt.Contains(name));
            Assert.Equal(t.Shape, ckpt.Entry(name).Shape);
            Assert.Equal(t.Floats.ToArray(), ckpt.Get(name).Floats.ToArray());
        }
    }

    [Fact]
    public void Sharded_round_trip_uses_hf_names_and_index()
    {
        var tensors = MakeTensors(); // 16+32+48+64+80 = 240 bytes
        SafetensorsWriter.WriteSharded(_scratch.Path, tensors, maxShardBytes: 100, new Dictionary<string, string> { ["format"] = "pt" });

        // Greedy: [16,32,48]=96 | [64] (64+80 > 100) | [80]
        var files = Directory.GetFiles(_scratch.Path).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                      "model-00003-of-00003.safetensors", "model.safetensors.index.json"], files);

        using var index = JsonDocument.Parse(File.ReadAllText(_scratch.File("model.safetensors.index.json")));
        Assert.Equal(240, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
        var map = index.RootElement.GetProperty("weight_map");
        Assert.Equal("model-00001-of-00003.safetensors", map.GetProperty("layer.2.weight").GetString());
        Assert.Equal("model-00002-of-00003.safetensors", map.GetProperty("layer.3.weight").GetString());
        Assert.Equal("model-00003-of-00003.safetensors", map.GetProperty("layer.4.weight").GetString());

        using (var shard = SafetensorsFile.Open(_scratch.File("model-00002-of-00003.safetensors")))
            Assert.Equal("pt", shard.Metadata["format"]);

        using var ckpt = SafetensorsCheckpoint.OpenDirectory(_scratch.Path);
        AssertSameContent(ckpt, tensors);
        foreach (var (_, t) in tensors) t.Dispose();
    }

    [Fact]
    public void Everything_fitting_in_one_shard_writes_a_single_model_safetensors_and_removes_stale_shards()
    {
        var tensors = MakeTensors();
        SafetensorsWriter.WriteSharded(_scratch.Path, tensors, maxShardBytes: 100);
        Assert.True(File.Exists(_scratch.File("model.safetensors.index.json")));

        SafetensorsWriter.WriteSharded(_scratch.Path, tensors, maxShardBytes: 1 << 20);
        Assert.Equal(["model.safetensors"], Directory.GetFiles(_scratch.Path).Select(f => Path.GetFileName(f)!));
        using (var ckpt = SafetensorsCheckpoint.OpenDirectory(_scratch.Path))
            AssertSameContent(ckpt, tensors);

        // And back to shards: the single file must go, or it would shadow the index.
        SafetensorsWriter.WriteSharded(_scratch.Path, tensors, maxShardBytes: 100);
        Assert.False(File.Exists(_scratch.File("model.safetensors")));
        using (var ckpt = SafetensorsCheckpoint.OpenDirectory(_scratch.Path))
            AssertSameContent(ckpt, tensors);
        foreach (var (_, t) in tensors) t.Dispose();
    }

    [Fact]
    public void A_tensor_larger_than_the_shard_limit_gets_its_own_shard()
    {
        var tensors = MakeTensors();
        SafetensorsWriter.WriteSharded(_scratch.Path, tensors, maxShardBytes: 10);
        Assert.Equal(5, Directory.GetFiles(_scratch.Path, "model-*-of-00005.safetensors").Length);
        using var ckpt = SafetensorsCheckpoint.OpenDirectory(_scratch.Path);
        AssertSameContent(ckpt, tensors);
        foreach (var (_, t) in tensors) t.Dispose();
    }

    [Fact]
    public void Folder_with_neither_file_is_an_error()
    {
        var e = Assert.Throws<PeftException>(() => SafetensorsCheckpoint.OpenDirectory(_scratch.Path));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("model.safetensors.index.json", e.Message);
        Assert.Throws<PeftException>(() => SafetensorsCheckpoint.OpenDirectory(_scratch.File("missing-folder")));
    }

    [Fact]
    public void Index_naming_a_missing_shard_is_an_error()
    {
        var tensors = MakeTensors();
        SafetensorsWriter.WriteSharded(_scratch.Path, tensors, maxShardBytes: 100);
        File.Delete(_scratch.File("model-00002-of-00003.safetensors"));
        var e = Assert.Throws<PeftException>(() => SafetensorsCheckpoint.OpenDirectory(_scratch.Path));
        Assert.Contains("model-00002-of-00003.safetensors", e.Message);
        Assert.Contains("'layer.3.weight'", e.Message);
        foreach (var (_, t) in tensors) t.Dispose();
    }

    [Fact]
    public void Shard_lacking_a_tensor_the_index_promises_is_an_error()
    {
        var tensors = MakeTensors();
        SafetensorsWriter.WriteSharded(_scratch.Path, tensors, maxShardBytes: 100);
        string index = _scratch.File("model.safetensors.index.json");
        File.WriteAllText(index, File.ReadAllText(index).Replace(
            "\"layer.4.weight\": \"model-00003-of-00003.safetensors\"",
            "\"layer.4.weight\": \"model-00001-of-00003.safetensors\""));
        var e = Assert.Throws<PeftException>(() => SafetensorsCheckpoint.OpenDirectory(_scratch.Path));
        Assert.Contains("model-00001-of-00003.safetensors", e.Message);
        Assert.Contains("'layer.4.weight'", e.Message);
        foreach (var (_, t) in tensors) t.Dispose();
    }

    [Fact]
    public void Malformed_index_is_an_error_naming_the_index()
    {
        string index = _scratch.File("model.safetensors.index.json");
        foreach (var (json, fragment) in new[]
        {
            ("{", "not valid JSON"),
            ("{\"metadata\":{}}", "missing \"weight_map\""),
            ("{\"weight_map\":[]}", "\"weight_map\" must be an object"),
            ("{\"weight_map\":{\"a\":3}}", "\"a\""),
            ("{\"weight_map\":{\"a\":\"../model.safetensors\"}}", "plain file name"),
        })
        {
            File.WriteAllText(index, json);
            var e = Assert.Throws<PeftException>(() => SafetensorsCheckpoint.OpenDirectory(_scratch.Path));
            Assert.Contains("model.safetensors.index.json", e.Message);
            Assert.Contains(fragment, e.Message);
        }
    }

    [Fact]
    public void Unknown_tensor_in_checkpoint_is_an_error()
    {
        var tensors = MakeTensors();
        SafetensorsWriter.WriteSharded(_scratch.Path, tensors, maxShardBytes: 1 << 20);
        using var ckpt = SafetensorsCheckpoint.OpenDirectory(_scratch.Path);
        var e = Assert.Throws<PeftException>(() => ckpt.Get("lm_head.weight"));
        Assert.Contains("'lm_head.weight'", e.Message);
        foreach (var (_, t) in tensors) t.Dispose();
    }
}
