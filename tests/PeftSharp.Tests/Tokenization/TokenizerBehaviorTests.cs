using System.Text;
using PeftSharp.Tokenization;

namespace PeftSharp.Tests.Tokenization;

/// <summary>Behaviour on the real files beyond the reference fixtures: special ids, round trips, HF-vs-reference deviations.</summary>
public class TokenizerBehaviorTests
{
    [Fact]
    public void SpecialIdsComeFromTokenizerConfig()
    {
        var l2 = TokenizerFiles.Load("llama2");
        var l3 = TokenizerFiles.Load("llama3");
        var q3 = TokenizerFiles.Load("qwen3");
        Assert.Equal((1, 2), (l2.BosId!.Value, l2.EosId!.Value));
        Assert.Equal((128000, 128001), (l3.BosId!.Value, l3.EosId!.Value));
        Assert.Null(q3.BosId);
        Assert.Equal(151645, q3.EosId);
        Assert.Equal(151643, q3.PadId);
        Assert.Equal("<|im_end|>", q3.IdToToken(151645));
        Assert.Equal(151669, q3.VocabSize);
        Assert.Equal(128256, l3.VocabSize);
        Assert.Equal(32000, l2.VocabSize);
    }

    [Fact]
    public void PostProcessorDecidesBos()
    {
        // Llama 2's TemplateProcessing adds <s>; these Llama 3 and Qwen3 files use a ByteLevel post-processor (no BOS).
        Assert.Equal([1], TokenizerFiles.Load("llama2").Encode(""));
        Assert.Empty(TokenizerFiles.Load("llama2").Encode("", addSpecial: false));
        Assert.Empty(TokenizerFiles.Load("llama3").Encode(""));
        Assert.Empty(TokenizerFiles.Load("qwen3").Encode(""));
    }

    [Fact]
    public void SpecialTokenStringsInTextBecomeTheirIds()
    {
        var l3 = TokenizerFiles.Load("llama3");
        int[] ids = l3.Encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
        Assert.Equal(128006, ids[0]);
        Assert.Equal(128007, ids[2]);
        Assert.Equal(128009, ids[^1]);
        Assert.Equal("user\n\nHi", l3.Decode(ids, skipSpecial: true));
        // A non-special added token (Qwen3 <think>) is matched too, and is kept by skipSpecial.
        var q3 = TokenizerFiles.Load("qwen3");
        int[] think = q3.Encode("<think>x</think>");
        Assert.Equal([151667, q3.TokenToId("x")!.Value, 151668], think);
        Assert.Equal("<think>x</think>", q3.Decode(think, skipSpecial: true));
    }

    [Fact]
    public void Llama2PrependsMetaspaceAfterEachAddedToken()
    {
        // HF applies the Prepend("▁") normalizer to every piece between added tokens.
        var l2 = TokenizerFiles.Load("llama2");
        var tokens = l2.Encode("a</s>b", addSpecial: false).Select(l2.IdToToken).ToArray();
        Assert.Equal(["▁a", "</s>", "▁b"], tokens);
    }

    [Fact]
    public void ByteFallbackForCharactersOutsideTheVocabulary()
    {
        var l2 = TokenizerFiles.Load("llama2");
        int[] ids = l2.Encode("\n", addSpecial: false);
        Assert.Equal(["▁", "<0x0A>"], ids.Select(l2.IdToToken).ToArray());
        Assert.Equal("\n", l2.Decode(ids));
    }

    [Fact]
    public void ByteOrderMarkAfterSpaceFollowsOnigurumaNotJavaScript()
    {
        // Known deviation of the reference (see make-fixtures.mjs): JavaScript's \s matches U+FEFF, Oniguruma's
        // (HF tokenizers) does not, so " \uFEFF" is one pre-token " ?[^\s\p{L}\p{N}]+" in HF.
        foreach (var name in new[] { "llama3", "qwen3" })
        {
            var tok = TokenizerFiles.Load(name);
            var tokens = tok.Encode(" \ufeffBOM", addSpecial: false).Select(tok.IdToToken).ToArray();
            Assert.Equal("Ġï»¿", tokens[0]);
            Assert.Equal("BOM", string.Concat(tokens.Skip(1)));
        }
    }

    [Theory]
    [InlineData("llama2")]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    public void DecodeInvertsEncodeOnRandomText(string name)
    {
        var tok = TokenizerFiles.Load(name);
        var rng = new Random(20261122);
        string[] alphabet = ["a", "b", "Z", " ", "  ", "\n", "\t", "0", "9", ".", ",", "'", "-", "é", "ß", "日", "本", "語", "€", "😀", "👍🏽", "\u200d", "ا", "ह", "ी", "{", "}", "\\", "\""];
        for (int trial = 0; trial < 200; trial++)
        {
            var sb = new StringBuilder();
            int len = rng.Next(0, 40);
            for (int i = 0; i < len; i++) sb.Append(alphabet[rng.Next(alphabet.Length)]);
            string text = sb.ToString();
            string expected = name == "qwen3" ? UnicodeNormalization.Normalize(text, NormalizationForm.FormC) : text;
            int[] ids = tok.Encode(text, addSpecial: false);
            Assert.True(expected == tok.Decode(ids), $"{name}: round trip of {System.Text.Json.JsonSerializer.Serialize(text)}");
        }
    }

    [Fact]
    public void DecodeRejectsIdsOutsideTheVocabulary()
    {
        var tok = TokenizerFiles.Load("llama3");
        var e = Assert.Throws<PeftException>(() => tok.Decode([1, 999_999]));
        Assert.Contains("999999", e.Message);
        Assert.Throws<PeftException>(() => tok.IdToToken(-1));
    }

    [Fact]
    public void ConfigIsReadWithTheTokenizer()
    {
        var l3 = TokenizerFiles.Load("llama3");
        Assert.Contains("start_header_id", l3.Config.ChatTemplate);
        Assert.Equal("<|begin_of_text|>", l3.Config.BosToken);
        Assert.Null(l3.Config.ModelMaxLength); // the 1e30 "unbounded" sentinel
        var q3 = TokenizerFiles.Load("qwen3");
        Assert.Equal(131072, q3.Config.ModelMaxLength);
        Assert.False(q3.Config.AddBosToken);
        Assert.Equal("<|endoftext|>", q3.Config.PadToken);
        Assert.Equal("tokenizer-qwen3", q3.Name);
    }

    [Fact]
    public void LoadAcceptsTheTokenizerJsonPath()
    {
        var tok = HfTokenizer.Load(Path.Combine(TokenizerFiles.ModelDir("qwen3"), "tokenizer.json"));
        Assert.Equal(151645, tok.EosId); // tokenizer_config.json beside it was read
        Assert.Equal(TokenizerFiles.Load("qwen3").Encode("Hello, world"), tok.Encode("Hello, world"));
    }
}

public class AddBosEosConfigTests
{
    [Fact]
    public void LlamaClassTakesAddEosTokenFromConfig()
    {
        // transformers' LlamaTokenizerFast rebuilds its template from add_bos_token/add_eos_token.
        string dir = TokenizerFiles.ModelDir("llama2");
        var baseConfig = TokenizerConfig.Load(Path.Combine(dir, "tokenizer_config.json"));
        byte[] json = File.ReadAllBytes(Path.Combine(dir, "tokenizer.json"));
        var withEos = HfTokenizer.FromJson(json, "tokenizer.json", baseConfig with { AddEosToken = true });
        var noBos = HfTokenizer.FromJson(json, "tokenizer.json", baseConfig with { AddBosToken = false });
        int[] plain = TokenizerFiles.Load("llama2").Encode("Hi", addSpecial: false);
        Assert.Equal([1, .. plain, 2], withEos.Encode("Hi"));
        Assert.Equal(plain, noBos.Encode("Hi"));
        Assert.Equal(plain, withEos.Encode("Hi", addSpecial: false));
    }
}
