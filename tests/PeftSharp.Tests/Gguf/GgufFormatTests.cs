using PeftSharp.Tests.TestSupport;
using System.Buffers.Binary;
using System.Text;
using PeftSharp.IO.Gguf;
using PeftSharp.IO.Gguf.Reference;

namespace PeftSharp.Tests.Gguf;

/// <summary>GGUF writer/reader round trips, the Q8_0 codec against its float64 reference, and malformed files.</summary>
public class GgufFormatTests
{
    static string Temp(string name) => Path.Combine(Path.GetTempPath(), $"peftsharp-gguf-{Guid.NewGuid():N}-{name}");

    /// <summary>A small valid file: metadata of several types and two tensors (F32 [3, 4] and Q8_0 [2, 32]).</summary>
    static (string Path, byte[] Bytes) Sample()
    {
        var path = Temp("sample.gguf");
        var m = new GgufMetadata(path);
        m.Set("general.architecture", "llama");
        m.Set("test.u32", 7u);
        m.Set("test.f32", 1.5f);
        m.Set("test.bool", true);
        m.Set("test.strings", GgufValue.Of(["a", "bc", "ü"]));
        m.Set("test.ints", GgufValue.Of([1, -2, 3]));
        var f = Enumerable.Range(0, 12).Select(i => i * 0.25f).ToArray();
        var q = Enumerable.Range(0, 64).Select(i => MathF.Sin(i)).ToArray();
        var qb = new byte[Q8_0.ByteSize(64)];
        Q8_0.Encode(q, qb);
        GgufWriter.Write(path, m,
        [
            new GgufTensorSource("t0", GgmlType.F32, [3, 4], 48, s => s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.AsSpan()))),
            new GgufTensorSource("t1", GgmlType.Q8_0, [2, 32], qb.Length, s => s.Write(qb)),
        ]);
        return (path, File.ReadAllBytes(path));
    }

    static PeftException Fails(byte[] bytes)
    {
        var p = Temp("bad.gguf");
        File.WriteAllBytes(p, bytes);
        var e = Assert.Throws<PeftException>(() => { using var f = GgufFile.Open(p); });
        Assert.Contains(p, e.Message);
        return e;
    }

    /// <summary>Byte offset of the tensor info of <paramref name="name"/> (just after its name).</summary>
    static int AfterName(byte[] b, string name)
    {
        var needle = new byte[8 + name.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(needle, (ulong)name.Length);
        Encoding.ASCII.GetBytes(name).CopyTo(needle, 8);
        int at = b.AsSpan().IndexOf(needle);
        Assert.True(at > 0);
        return at + needle.Length;
    }

    [Fact]
    public void RoundTripsMetadataAndTensors()
    {
        var (path, bytes) = Sample();
        Assert.Equal("GGUF", Encoding.ASCII.GetString(bytes, 0, 4));
        using var f = GgufFile.Open(path);
        Assert.Equal(3u, f.Version);
        Assert.Equal("llama", f.Metadata.GetString("general.architecture"));
        Assert.Equal(7, f.Metadata.GetInt("test.u32"));
        Assert.Equal(1.5, f.Metadata.GetFloat("test.f32"));
        Assert.True(f.Metadata.GetBool("test.bool"));
        Assert.Equal(["a", "bc", "ü"], f.Metadata.GetArray<string>("test.strings")!);
        Assert.Equal([1, -2, 3], f.Metadata.GetArray<int>("test.ints")!);
        var t0 = f.Tensor("t0");
        Assert.Equal([4L, 3L], t0.Dims);              // ggml order: innermost first
        Assert.Equal([3, 4], t0.RowMajorShape);
        Assert.Equal(0, (f.DataStart + f.Tensor("t1").Offset) % 32);
        var raw = new byte[48];
        f.ReadBytes(t0, raw);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => i * 0.25f), System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(raw).ToArray());
        var wrongType = Assert.Throws<PeftException>(() => f.Metadata.GetString("test.u32"));
        Assert.Contains("test.u32", wrongType.Message);
    }

    [Fact]
    public void Q8_0MatchesTheFloat64ReferenceAndDecodesWithinHalfAStep()
    {
        var rng = new Random(11);
        var x = new float[32 * 40];
        for (int i = 0; i < x.Length; i++) x[i] = (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-3, 3)));
        x.AsSpan(32, 32).Clear();                           // an all-zero block: scale 0
        x[64] = 0.5f * 127; x[65] = 0.25f;                  // exact halves exercise the away-from-zero rounding
        var bytes = new byte[Q8_0.ByteSize(x.Length)];
        Q8_0.Encode(x, bytes);
        var decoded = new float[x.Length];
        Q8_0.Decode(bytes, decoded);
        for (int b = 0; b < x.Length / 32; b++)
        {
            var (scale, codes) = Q8_0Reference.EncodeBlock(x.AsSpan(b * 32, 32));
            Assert.Equal(BitConverter.HalfToUInt16Bits(scale), BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(b * 34)));
            for (int j = 0; j < 32; j++) Assert.Equal(codes[j], (sbyte)bytes[b * 34 + 2 + j]);
            var refDecoded = Q8_0Reference.DecodeBlock(scale, codes);
            double amax = x.AsSpan(b * 32, 32).ToArray().Max(v => Math.Abs((double)v));
            for (int j = 0; j < 32; j++)
            {
                Assert.Equal(refDecoded[j], decoded[b * 32 + j], 6);
                // half a quantization step, plus the float16 rounding of the scale
                Assert.True(Math.Abs(decoded[b * 32 + j] - x[b * 32 + j]) <= amax / 127 * (0.5 + 127 * 1e-3) + 1e-30);
            }
        }
    }

    [Fact]
    public void EveryTruncationIsAClearError()
    {
        var (path, bytes) = Sample();
        long end;
        using (var f = GgufFile.Open(path)) end = f.DataStart + f.Tensor("t1").Offset + f.Tensor("t1").ByteLength;   // then only padding
        for (int len = 0; len < end; len += len < 200 ? 1 : 7)
        {
            var e = Fails(bytes[..len]);
            Assert.Matches("truncated|cannot fit|more than the|outside the data section|not a GGUF", e.Message);
        }
    }

    [Fact]
    public void BadMagicAndVersion()
    {
        var (_, bytes) = Sample();
        var b = (byte[])bytes.Clone(); b[0] = (byte)'X';
        Assert.Contains("not a GGUF file", Fails(b).Message);
        b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), 4);
        Assert.Contains("version 4", Fails(b).Message);
    }

    [Fact]
    public void HugeCountsAndLengthsAreRefusedBeforeAllocating()
    {
        var (_, bytes) = Sample();
        var b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), 1UL << 60);
        Assert.Contains("tensor_count", Fails(b).Message);
        b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), ulong.MaxValue);
        Assert.Contains("metadata_kv_count", Fails(b).Message);
        b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(24), 1UL << 40);   // first key's length
        Assert.Contains("metadata key #0", Fails(b).Message);
        // the string array's count
        int arr = AfterName(bytes, "test.strings") + 4 + 4;
        b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(arr), 1UL << 50);
        Assert.Contains("'test.strings' count", Fails(b).Message);
        // a dimension so large the element count overflows / the data cannot be in the file
        int dims = AfterName(bytes, "t0") + 4;
        b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(dims), 1UL << 40);
        Assert.Contains("ne[0]", Fails(b).Message);
        b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(dims), 1 << 30);
        Assert.Contains("outside the data section", Fails(b).Message);
        b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(dims - 4), 9);
        Assert.Contains("n_dims 9", Fails(b).Message);
    }

    [Fact]
    public void UnknownTypesAndBadOffsets()
    {
        var (_, bytes) = Sample();
        int type = AfterName(bytes, "t0") + 4 + 16;
        var b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(type), 99);
        Assert.Contains("unknown ggml type 99", Fails(b).Message);
        b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(type + 4), 1 << 20);
        Assert.Contains("outside the data section", Fails(b).Message);
        b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(type + 4), 4);
        Assert.Contains("alignment", Fails(b).Message);
        int q = AfterName(bytes, "t1") + 4;
        b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(q), 31);   // Q8_0 rows must be 32-multiples
        Assert.Contains("block size 32", Fails(b).Message);
        int valueType = AfterName(bytes, "test.u32");
        b = (byte[])bytes.Clone(); BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(valueType), 77);
        Assert.Contains("unknown value type 77", Fails(b).Message);
    }

    [Fact]
    public void WritesAreAtomic()
    {
        var path = Temp("atomic.gguf");
        File.WriteAllText(path, "previous");
        var m = new GgufMetadata(path);
        m.Set("general.architecture", "llama");
        Assert.Throws<InvalidOperationException>(() => GgufWriter.Write(path, m,
            [new GgufTensorSource("t", GgmlType.F32, [4], 16, s => s.Write(new byte[8]))]));   // writes too few bytes
        Assert.Equal("previous", File.ReadAllText(path));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.tmp-*"));
    }

    [Fact]
    public void ModelLoaderNamesTheProblem()
    {
        var path = Temp("adapter-as-model.gguf");
        var m = new GgufMetadata(path);
        m.Set("general.architecture", "llama");
        m.Set("general.type", "adapter");
        GgufWriter.Write(path, m, []);
        using var f = GgufFile.Open(path);
        var e = Assert.Throws<PeftException>(() => GgufModelLoader.ReadConfig(f));
        Assert.Contains("general.type", e.Message);
    }
}
