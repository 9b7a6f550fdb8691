using System.Text;
using PeftSharp.IO;

namespace PeftSharp.Tests.IO;

/// <summary>Hand-crafted bad files: each must fail with a PeftException naming the file, the tensor (where there is
/// one) and what was wrong — never a crash or a read outside the file.</summary>
public class SafetensorsMalformedTests : IDisposable
{
    readonly ScratchDir _scratch = new();
    public void Dispose() => _scratch.Dispose();

    /// <summary>u64 length + header + data; <paramref name="declaredLength"/> overrides the written length.</summary>
    string Craft(string header, int dataBytes, ulong? declaredLength = null, string name = "bad.safetensors")
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + dataBytes];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), declaredLength ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        for (int i = 0; i < dataBytes; i++) bytes[8 + h.Length + i] = (byte)(i * 7 + 1);
        string path = _scratch.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    static void AssertFails(string path, params string[] fragments)
    {
        var e = Assert.Throws<PeftException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Contains(Path.GetFileName(path), e.Message);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
    }

    const string Ok = "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    [Fact]
    public void Well_formed_control_case_opens()
    {
        using var f = SafetensorsFile.Open(Craft("{" + Ok + "}", 8));
        Assert.Equal([2], f.Get("w").Shape);
    }

    [Fact]
    public void File_shorter_than_8_bytes()
    {
        string path = _scratch.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        AssertFails(path, "too short");
        string empty = _scratch.File("empty.safetensors");
        File.WriteAllBytes(empty, []);
        AssertFails(empty, "too short");
    }

    [Fact]
    public void Missing_file_and_folder()
    {
        var e = Assert.Throws<PeftException>(() => SafetensorsFile.Open(_scratch.File("absent.safetensors")));
        Assert.Contains("absent.safetensors", e.Message);
        Assert.Throws<PeftException>(() => SafetensorsFile.Open(_scratch.Path));
    }

    [Fact]
    public void Header_length_beyond_the_file_or_absurd()
    {
        AssertFails(Craft("{" + Ok + "}", 8, declaredLength: 5000), "header length 5000", "past the end");
        AssertFails(Craft("{" + Ok + "}", 8, declaredLength: ulong.MaxValue), "limit");
        AssertFails(Craft("{}", 0, declaredLength: 200_000_000), "limit");
    }

    [Fact]
    public void Bad_json_and_non_object_header()
    {
        AssertFails(Craft("{\"w\":", 0), "not valid JSON");
        AssertFails(Craft("", 0), "not valid JSON");
        AssertFails(Craft("[1,2]", 0), "must be a JSON object");
        AssertFails(Craft("{" + Ok + "} trailing", 8), "not valid JSON");
    }

    [Fact]
    public void Invalid_utf8_header()
    {
        string path = _scratch.File("utf8.safetensors");
        byte[] h = [(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}'];
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)h.Length), .. h]);
        AssertFails(path, "UTF-8");
    }

    [Fact]
    public void Entry_missing_fields_or_with_wrong_types()
    {
        AssertFails(Craft("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "'w'", "missing \"dtype\"");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), "'w'", "missing \"shape\"");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "'w'", "missing \"data_offsets\"");
        AssertFails(Craft("{\"w\":[1,2]}", 8), "'w'", "must be an object");
        AssertFails(Craft("{\"w\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "'w'", "\"dtype\" must be a string");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8), "'w'", "\"shape\" must be an array");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8), "'w'", "\"shape\"[0]");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8), "'w'", "\"shape\"[0]");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8), "'w'", "[begin, end]");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,\"8\"]}}", 8), "'w'", "end must be an integer");
        AssertFails(Craft("{\"__metadata__\":{\"k\":1}," + Ok + "}", 8), "\"k\"", "must be a string");
        AssertFails(Craft("{\"__metadata__\":[]," + Ok + "}", 8), "__metadata__");
    }

    [Fact]
    public void Unknown_and_unsupported_dtypes()
    {
        AssertFails(Craft("{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "'w'", "unknown dtype \"Q7\"", "F32");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8), "'w'", "unsupported dtype \"F64\"");
    }

    [Fact]
    public void Negative_or_oversized_shape()
    {
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "'w'", "negative");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296],\"data_offsets\":[0,8]}}", 8), "'w'", "exceeds");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", 8),
            "'w'", "too large");
    }

    [Fact]
    public void Offsets_out_of_range_reversed_or_negative()
    {
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4), "'w'", "past the end of the data buffer");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8), "'w'", "begin 8 > end 0");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8), "'w'", "negative");
        AssertFails(Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]}}", 8), "'w'", "end must be an integer");
    }

    [Fact]
    public void Overlapping_tensors_and_gaps()
    {
        AssertFails(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," +
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "'b'", "overlap", "'a'");
        AssertFails(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}," +
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12), "'b'", "gap");
        AssertFails(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "'a'", "gap");
        AssertFails(Craft("{" + Ok + "}", 12), "trailing");
    }

    [Fact]
    public void Shape_times_dtype_size_must_match_the_offsets()
    {
        AssertFails(Craft("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
            "'w'", "needs 4 bytes", "span 8");
    }

    [Fact]
    public void Duplicate_tensor_names()
    {
        AssertFails(Craft("{" + Ok + "," + Ok.Replace("[0,8]", "[8,16]") + "}", 16), "'w'", "twice");
    }
}
