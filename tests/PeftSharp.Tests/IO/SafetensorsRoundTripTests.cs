using PeftSharp.IO;
using PeftSharp.Tensors;

namespace PeftSharp.Tests.IO;

public unsafe class SafetensorsRoundTripTests
{
    /// <summary>A tensor of the given dtype filled with seeded random bytes (every bit pattern round-trips as raw data).</summary>
    static Tensor RandomTensor(Random rng, DType dtype, params int[] shape)
    {
        var t = new Tensor(dtype, shape);
        rng.NextBytes(new Span<byte>(t.Data, (int)t.ByteLength));
        return t;
    }

    static byte[] Bytes(Tensor t) => new ReadOnlySpan<byte>(t.Data, (int)t.ByteLength).ToArray();

    [Fact]
    public void All_dtypes_scalars_empty_tensors_and_metadata_round_trip()
    {
        using var scratch = new ScratchDir();
        var rng = new Random(1234);
        var tensors = new List<(string Name, Tensor Tensor)>
        {
            ("model.layers.0.self_attn.q_proj.weight", RandomTensor(rng, DType.BF16, 8, 6)),
            ("f32", RandomTensor(rng, DType.F32, 3, 5, 2)),
            ("f16", RandomTensor(rng, DType.F16, 7)),
            ("u8", RandomTensor(rng, DType.U8, 3, 3)),   // odd byte count: later tensors start unaligned
            ("i32", RandomTensor(rng, DType.I32, 4)),
            ("i64", RandomTensor(rng, DType.I64, 2, 1)),
            ("scalar", RandomTensor(rng, DType.F32)),
            ("empty", RandomTensor(rng, DType.BF16, 0, 16)),
            ("ünïcode name", RandomTensor(rng, DType.F32, 1)),
        };
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "quote \" and ünïcode" };
        string path = scratch.File("all.safetensors");
        SafetensorsWriter.Write(path, tensors, meta);

        using var f = SafetensorsFile.Open(path);
        Assert.Equal(tensors.Select(t => t.Name), f.Entries.Select(e => e.Name)); // header keeps the given order
        Assert.Equal(meta, f.Metadata);
        foreach (var (name, expected) in tensors)
        {
            using var got = f.Get(name);
            Assert.Equal(expected.DType, got.DType);
            Assert.Equal(expected.Shape, got.Shape);
            Assert.Equal(Bytes(expected), Bytes(got));
            expected.Dispose();
        }
        Assert.Equal(0, f.Get("scalar").Rank);
    }

    [Fact]
    public void Header_is_space_padded_so_the_data_buffer_starts_8_byte_aligned()
    {
        using var scratch = new ScratchDir();
        string path = scratch.File("pad.safetensors");
        for (int nameLength = 1; nameLength <= 9; nameLength++)
        {
            using var t = new Tensor(DType.F32, 1);
            SafetensorsWriter.Write(path, [(new string('x', nameLength), t)]);
            byte[] bytes = File.ReadAllBytes(path);
            long n = BitConverter.ToInt64(bytes, 0);
            Assert.Equal(0, n % 8);
            Assert.Equal(8 + n + 4, bytes.Length);
            string header = System.Text.Encoding.UTF8.GetString(bytes, 8, (int)n);
            string json = header.TrimEnd(' ');
            Assert.EndsWith("}", json);
            Assert.InRange(header.Length - json.Length, 0, 7); // only the padding needed, and only spaces
        }
    }

    [Fact]
    public void An_empty_file_with_only_metadata_round_trips()
    {
        using var scratch = new ScratchDir();
        string path = scratch.File("none.safetensors");
        SafetensorsWriter.Write(path, [], new Dictionary<string, string> { ["k"] = "v" });
        using var f = SafetensorsFile.Open(path);
        Assert.Empty(f.Entries);
        Assert.Equal("v", f.Metadata["k"]);
    }

    [Fact]
    public void Write_replaces_an_existing_file_and_leaves_no_temp_files()
    {
        using var scratch = new ScratchDir();
        string path = scratch.File("w.safetensors");
        using var a = new Tensor(DType.F32, 2);
        a.Floats[0] = 1; a.Floats[1] = 2;
        SafetensorsWriter.Write(path, [("a", a)]);
        a.Floats[0] = 5;
        SafetensorsWriter.Write(path, [("a", a), ("b", a)]);
        using (var f = SafetensorsFile.Open(path))
        {
            Assert.Equal(5f, f.Get("b").Floats[0]);
            Assert.Equal(2, f.Entries.Count);
        }
        Assert.Equal(["w.safetensors"], Directory.GetFiles(scratch.Path).Select(f => Path.GetFileName(f)!));
    }

    [Fact]
    public void Write_over_a_file_that_is_currently_mapped_keeps_the_old_views_valid()
    {
        using var scratch = new ScratchDir();
        string path = scratch.File("m.safetensors");
        using var a = new Tensor(DType.F32, 1);
        a.Floats[0] = 7;
        SafetensorsWriter.Write(path, [("a", a)]);
        using var f = SafetensorsFile.Open(path);
        var view = f.Get("a");
        a.Floats[0] = 9;
        SafetensorsWriter.Write(path, [("a", a)]);  // renamed over: the mapping still sees the old inode
        Assert.Equal(7f, view.Floats[0]);
        using var g = SafetensorsFile.Open(path);
        Assert.Equal(9f, g.Get("a").Floats[0]);
    }

    [Fact]
    public void Writer_rejects_duplicate_and_reserved_names_without_creating_the_file()
    {
        using var scratch = new ScratchDir();
        using var t = new Tensor(DType.F32, 1);
        string path = scratch.File("dup.safetensors");
        var e = Assert.Throws<PeftException>(() => SafetensorsWriter.Write(path, [("x", t), ("x", t)]));
        Assert.Contains("'x'", e.Message);
        Assert.Throws<PeftException>(() => SafetensorsWriter.Write(path, [("__metadata__", t)]));
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(scratch.Path));
    }

    [Fact]
    public void Get_of_an_unknown_name_names_the_file_and_tensor()
    {
        using var f = SafetensorsFile.Open(IoTestPaths.Fixture("safetensors", "tiny.safetensors"));
        Assert.False(f.Contains("nope"));
        var e = Assert.Throws<PeftException>(() => f.Get("nope"));
        Assert.Contains("tiny.safetensors", e.Message);
        Assert.Contains("'nope'", e.Message);
    }
}
