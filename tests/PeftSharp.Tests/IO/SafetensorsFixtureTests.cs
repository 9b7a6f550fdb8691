using PeftSharp.IO;
using PeftSharp.Tensors;

namespace PeftSharp.Tests.IO;

/// <summary>tiny.safetensors is written by tests/fixtures/safetensors/make_tiny.py, an independent implementation
/// of the spec (Python struct + json), so these tests do not merely check our reader against our writer.</summary>
public unsafe class SafetensorsFixtureTests
{
    static string TinyPath => IoTestPaths.Fixture("safetensors", "tiny.safetensors");

    [Fact]
    public void Reads_every_dtype_from_the_independently_written_fixture()
    {
        using var f = SafetensorsFile.Open(TinyPath);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal("make_tiny.py", f.Metadata["source"]);
        Assert.Equal(["f32.matrix", "bf16.vector", "f16.vector", "u8.bytes", "i32.vector", "i64.vector", "scalar", "empty"],
            f.Entries.Select(e => e.Name));

        using (var t = f.Get("f32.matrix"))
        {
            Assert.Equal(DType.F32, t.DType);
            Assert.Equal([2, 3], t.Shape);
            Assert.Equal([1.5f, -2f, 3.25f, 0f, 0.125f, -7f], t.Floats.ToArray());
        }
        using (var t = f.Get("bf16.vector"))
        {
            Assert.Equal(DType.BF16, t.DType);
            using var w = t.ToF32();
            Assert.Equal([1f, -2.5f, 0.15625f, 65280f], w.Floats.ToArray());
        }
        using (var t = f.Get("f16.vector"))
        {
            Assert.Equal(DType.F16, t.DType);
            using var w = t.ToF32();
            Assert.Equal([0.5f, -1.75f, 1024f], w.Floats.ToArray());
        }
        using (var t = f.Get("u8.bytes"))
        {
            Assert.Equal([2, 2], t.Shape);
            Assert.Equal(new byte[] { 0, 1, 127, 255 }, t.Span<byte>().ToArray());
        }
        using (var t = f.Get("i32.vector"))
            Assert.Equal([-1, int.MaxValue, int.MinValue], t.Span<int>().ToArray());
        using (var t = f.Get("i64.vector"))
            Assert.Equal([-(1L << 40), 1L << 62], t.Span<long>().ToArray());
        using (var t = f.Get("scalar"))
        {
            Assert.Equal(0, t.Rank);
            Assert.Equal(1, t.ElementCount);
            Assert.Equal(3.5f, t.Floats[0]);
        }
        using (var t = f.Get("empty"))
        {
            Assert.Equal([0, 4], t.Shape);
            Assert.Equal(0, t.ElementCount);
        }
    }

    [Fact]
    public void Our_writer_reproduces_the_fixture_byte_for_byte()
    {
        using var scratch = new ScratchDir();
        string copy = scratch.File("rewritten.safetensors");
        using (var f = SafetensorsFile.Open(TinyPath))
        {
            var tensors = f.Entries.Select(e => (e.Name, f.Get(e.Name))).ToList();
            var meta = new Dictionary<string, string> { ["format"] = "pt", ["source"] = "make_tiny.py" };
            SafetensorsWriter.Write(copy, tensors, meta);
        }
        Assert.Equal(File.ReadAllBytes(TinyPath), File.ReadAllBytes(copy));
    }

    [Fact]
    public void Get_returns_a_view_into_the_mapping_not_a_copy()
    {
        using var f = SafetensorsFile.Open(TinyPath);
        using var a = f.Get("f32.matrix");
        using var b = f.Get("f32.matrix");
        Assert.True(a.Data == b.Data, "two Gets of the same tensor should point at the same mapped bytes");
        using var next = f.Get("bf16.vector");
        Assert.Equal(24, next.Data - a.Data); // data_offsets [24, 32] follow [0, 24]
    }
}

/// <summary>sharded/ is written by tests/fixtures/safetensors/make_sharded.py (unpadded headers, HF index layout).</summary>
public class SafetensorsShardedFixtureTests
{
    [Fact]
    public void Reads_an_independently_written_sharded_checkpoint()
    {
        using var ckpt = SafetensorsCheckpoint.OpenDirectory(IoTestPaths.Fixture("safetensors", "sharded"));
        Assert.Equal(["lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"], ckpt.Names);
        Assert.Equal([3, 2], ckpt.Entry("model.embed_tokens.weight").Shape);
        Assert.Equal([0f, 0.5f, 1f, 1.5f, 2f, 2.5f], ckpt.Get("model.embed_tokens.weight").Floats.ToArray());
        Assert.Equal([1f, -1f], ckpt.Get("model.norm.weight").Floats.ToArray());
        Assert.Equal([-3f, -2f, -1f, 1f, 2f, 3f], ckpt.Get("lm_head.weight").Floats.ToArray());
        Assert.Equal(2, ckpt.FilePaths.Count);
        Assert.EndsWith("model-00002-of-00002.safetensors", ckpt.FilePaths.Single(p => p.Contains("00002-of")));
    }
}
