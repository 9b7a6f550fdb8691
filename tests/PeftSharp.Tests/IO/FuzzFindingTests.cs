using System.Text;
using PeftSharp.IO;
using PeftSharp.Models;

namespace PeftSharp.Tests.IO;

/// <summary>Inputs the fuzzers (scripts/fuzz.sh) found, and the issue-#13 probe inputs of the same kind: each must
/// give a PeftException naming the file, not another exception.</summary>
public class FuzzFindingTests
{
    [Fact]
    public void ShardIndexWithInvalidUtf8InAShardName()
    {
        // fuzz/findings/index crash id:000000 (afl havoc): two 0xFF bytes inside the shard file name.
        var bytes = Encoding.ASCII.GetBytes("{\"metadata\": {\"se\": 16}, \"weight_map\": {\"a\": \"model-00001-of-00001.")
            .Concat(new byte[] { 0xff, 0xff }).Concat(Encoding.ASCII.GetBytes("fetensors\"}}")).ToArray();
        string dir = TestSupport.TinyRun.Temp("fuzz-index");
        File.WriteAllBytes(Path.Combine(dir, SafetensorsCheckpoint.IndexFileName), bytes);
        var e = Assert.Throws<PeftException>(() => SafetensorsCheckpoint.OpenDirectory(dir));
        Assert.Contains(SafetensorsCheckpoint.IndexFileName, e.Message);
        Assert.Contains("UTF-8", e.Message);
    }

    [Fact]
    public void SafetensorsHeaderWithALoneSurrogateEscape()
    {
        string header = "{\"w\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        var h = Encoding.ASCII.GetBytes(header);
        string path = Path.Combine(TestSupport.TinyRun.Temp("fuzz-st"), "x.safetensors");
        File.WriteAllBytes(path, BitConverter.GetBytes((long)h.Length).Concat(h).Concat(new byte[4]).ToArray());
        var e = Assert.Throws<PeftException>(() => { using var f = SafetensorsFile.Open(path); });
        Assert.Contains("x.safetensors", e.Message);
        Assert.Contains("not valid Unicode", e.Message);
    }

    [Fact]
    public void ConfigKeyWithALoneSurrogateEscape()
    {
        var e = Assert.Throws<PeftException>(() => ModelConfig.Parse("{\"model_type\":\"llama\\ud800\"}", "c.json"));
        Assert.Contains("c.json", e.Message);
    }

    [Theory]
    [InlineData("{\"text\": \"ab\\ud800cd\"}")]
    [InlineData("{\"te\\udc00xt\": \"ab\"}")]
    public void JsonlRecordWithALoneSurrogateIsABadLine(string line)
    {
        string path = Path.Combine(TestSupport.TinyRun.Temp("fuzz-jsonl"), "d.jsonl");
        File.WriteAllText(path, line + "\n{\"text\": \"fine\"}\n");
        var e = Assert.Throws<PeftException>(() => PeftSharp.Data.DatasetLoader.Load(path));
        Assert.Contains("d.jsonl:1", e.Message);
        var loaded = PeftSharp.Data.DatasetLoader.Load(path, new PeftSharp.Data.DatasetLoadOptions { SkipBadLines = true });
        Assert.Equal(1, loaded.SkippedCount);
    }

    [Fact]
    public void JsonlRecordWithInvalidUtf8IsABadLine()
    {
        string path = Path.Combine(TestSupport.TinyRun.Temp("fuzz-jsonl"), "d.jsonl");
        File.WriteAllBytes(path, Encoding.ASCII.GetBytes("{\"text\": \"ab").Concat(new byte[] { 0xff, 0xfe }).Concat(Encoding.ASCII.GetBytes("cd\"}\n")).ToArray());
        var e = Assert.Throws<PeftException>(() => PeftSharp.Data.DatasetLoader.Load(path));
        Assert.Contains("not valid Unicode", e.Message);
    }
}

/// <summary>tokenizer_config.json inputs found by fuzzing the chat-template reader.</summary>
public class TokenizerConfigFuzzFindingTests
{
    [Theory]
    // fuzz/findings/tokenizer-config crash id:000000 (afl havoc): "template" twice in the named entry.
    [InlineData("{\"bpken\": \"<s>\", \"chat_template\": [{\"name\": \"default\", \"template\": \"{lt\", \"template\": \"x\"}]}", "twice")]
    [InlineData("{\"chat_template\": [{\"name\": 7, \"template\": \"x\"}]}", "unexpected value type")]
    [InlineData("{\"chat_template\": \"x\", \"chat_template\": \"y\"}", "twice")]
    [InlineData("{\"chat_template\": ", "not valid JSON")]
    public void MalformedTokenizerConfigsAreNamedErrors(string json, string fragment)
    {
        var e = Assert.Throws<PeftException>(() => PeftSharp.Templates.ChatTemplateSource.Parse(json, "tokenizer_config.json"));
        Assert.Contains("tokenizer_config.json", e.Message);
        Assert.Contains(fragment, e.Message);
    }
}

/// <summary>bnb quant_state JSON inputs found by fuzzing (fuzz/findings/bnb crashes: invalid UTF-8 in a string).</summary>
public class BnbQuantStateFuzzFindingTests
{
    [Theory]
    [InlineData(new byte[] { 0xff, 0xfe })]                                   // invalid UTF-8 inside "quant_type"
    [InlineData(new byte[] { (byte)'\\', (byte)'u', (byte)'d', (byte)'8', (byte)'0', (byte)'0' })]   // a lone surrogate escape
    public void QuantStateWithInvalidTextIsANamedError(byte[] inside)
    {
        var w = new float[64 * 8];
        for (int i = 0; i < w.Length; i++) w[i] = MathF.Sin(i);
        var q = PeftSharp.Quantization.Quantized4Bit.Quantize(TestSupport.TestCompute.Cpu, w, [8, 64], PeftSharp.Quantization.Quant4Type.NF4, 64, doubleQuant: true);
        var tensors = PeftSharp.Quantization.BnbQuantState.ToTensors("layer", q).ToDictionary(x => x.Name, x => x.Tensor);
        var json = Encoding.ASCII.GetBytes("{\"quant_type\": \"nf").Concat(inside).Concat(Encoding.ASCII.GetBytes("4\", \"blocksize\": 64}")).ToArray();
        string key = PeftSharp.Quantization.BnbQuantState.QuantStateKey("layer", PeftSharp.Quantization.Quant4Type.NF4);
        using var state = new PeftSharp.Tensors.Tensor(PeftSharp.Tensors.DType.U8, json.Length);
        json.CopyTo(state.Span<byte>());
        tensors[key] = state;
        var e = Assert.Throws<PeftException>(() => PeftSharp.Quantization.BnbQuantState.FromTensors("layer", tensors, "m.safetensors"));
        Assert.Contains("m.safetensors", e.Message);
    }
}
