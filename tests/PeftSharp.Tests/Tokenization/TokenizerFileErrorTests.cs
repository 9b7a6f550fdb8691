using System.Text;
using PeftSharp.Tokenization;

namespace PeftSharp.Tests.Tokenization;

/// <summary>Malformed or unsupported tokenizer files: a PeftException naming the file and what was wrong.</summary>
public class TokenizerFileErrorTests
{
    const string File = "/models/x/tokenizer.json";

    static string Json(string normalizer = "null", string preTokenizer = "null", string model = """{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}""",
        string decoder = "null", string post = "null", string added = "[]") =>
        $$"""{"version":"1.0","added_tokens":{{added}},"normalizer":{{normalizer}},"pre_tokenizer":{{preTokenizer}},"post_processor":{{post}},"decoder":{{decoder}},"model":{{model}}}""";

    static HfTokenizer Build(string json) => HfTokenizer.FromJson(Encoding.UTF8.GetBytes(json), File);

    static void AssertError(string json, params string[] fragments)
    {
        var e = Assert.Throws<PeftException>(() => Build(json));
        Assert.Contains(File, e.Message);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
    }

    [Fact]
    public void MinimalTokenizerWorks()
    {
        var tok = Build(Json());
        Assert.Equal([2, 0], tok.Encode("aba"));
        Assert.Equal("ab a", tok.Decode([2, 0])); // no decoder: tokens joined by spaces, as HF does
    }

    [Fact] public void InvalidJson() => AssertError("{\"model\": ", "not valid JSON");
    [Fact] public void MissingModel() => AssertError("""{"normalizer":null}""", "missing \"model\"");
    [Fact] public void UnsupportedNormalizer() => AssertError(Json(normalizer: """{"type":"Precompiled","precompiled_charsmap":""}"""), "normalizer", "Precompiled");
    [Fact] public void UnsupportedPreTokenizer() => AssertError(Json(preTokenizer: """{"type":"BertPreTokenizer"}"""), "pre_tokenizer", "BertPreTokenizer");
    [Fact] public void UnsupportedDecoder() => AssertError(Json(decoder: """{"type":"CTC"}"""), "decoder", "CTC");
    [Fact] public void UnsupportedPostProcessor() => AssertError(Json(post: """{"type":"Weird"}"""), "post_processor", "Weird");
    [Fact] public void UnsupportedModel() => AssertError(Json(model: """{"type":"Unigram","vocab":[]}"""), "Unigram");
    [Fact] public void MergeWithUnknownToken() => AssertError(Json(model: """{"type":"BPE","vocab":{"a":0},"merges":["a q"]}"""), "merges[0]", "a q");
    [Fact] public void MalformedMerge() => AssertError(Json(model: """{"type":"BPE","vocab":{"a":0},"merges":["aq"]}"""), "merges[0]");
    [Fact] public void UnknownUnkToken() => AssertError(Json(model: """{"type":"BPE","vocab":{"a":0},"merges":[],"unk_token":"<unk>"}"""), "unk_token");
    [Fact] public void AddedTokenWithoutId() => AssertError(Json(added: """[{"content":"<x>"}]"""), "added_tokens[0]");
    [Fact] public void BadSplitBehavior() =>
        AssertError(Json(preTokenizer: """{"type":"Split","pattern":{"String":" "},"behavior":"Sideways","invert":false}"""), "Sideways");
    [Fact] public void BadRegex() =>
        AssertError(Json(preTokenizer: """{"type":"Split","pattern":{"Regex":"(unclosed"},"behavior":"Isolated","invert":false}"""), "(unclosed");

    [Fact]
    public void MissingFolderAndFileNameThePath()
    {
        string dir = Path.Combine(Path.GetTempPath(), "peft-no-such-tokenizer-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<PeftException>(() => HfTokenizer.Load(dir));
        Assert.Contains(dir, e.Message);
        Directory.CreateDirectory(dir);
        try
        {
            e = Assert.Throws<PeftException>(() => HfTokenizer.Load(dir));
            Assert.Contains("tokenizer.json", e.Message);
            System.IO.File.WriteAllText(Path.Combine(dir, "tokenizer.json"), Json());
            System.IO.File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"bos_token\": 5");
            e = Assert.Throws<PeftException>(() => HfTokenizer.Load(dir));
            Assert.Contains("tokenizer_config.json", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
