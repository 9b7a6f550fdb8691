using System.Text.Json;
using PeftSharp.Kernels;
using PeftSharp.Models;

namespace PeftSharp.Tests.IO;

public class ModelConfigTests
{
    static ModelConfig LoadAsset(string name) => ModelConfig.Load(IoTestPaths.ModelConfig(name));

    [Fact]
    public void TinyLlama()
    {
        var c = LoadAsset("tinyllama-1.1b.json");
        Assert.Equal("llama", c.ModelType);
        Assert.Equal(22, c.NumLayers);
        Assert.Equal(32, c.NumHeads);
        Assert.Equal(4, c.NumKvHeads);
        Assert.Equal(2048, c.HiddenSize);
        Assert.Equal(64, c.HeadDim);              // 2048 / 32
        Assert.Equal(5632, c.IntermediateSize);
        Assert.Equal(32000, c.VocabSize);
        Assert.False(c.TieWordEmbeddings);
        Assert.Null(c.RopeScaling);
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.Equal(1e-5f, c.RmsNormEps);
        Assert.Equal(2048, c.MaxPositions);
        Assert.Equal(1, c.BosTokenId);
        Assert.Equal([2], c.EosTokenIds);
        Assert.Equal("bfloat16", c.TorchDtype);
        Assert.False(c.QkvBias || c.OutputBias || c.MlpBias || c.QkNorm);
        Assert.Null(c.SlidingWindow);
    }

    [Fact]
    public void SmolLM2_is_tied_with_nine_heads()
    {
        var c = LoadAsset("smollm2-135m.json");
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal(9, c.NumHeads);
        Assert.Equal(3, c.NumKvHeads);
        Assert.Equal(64, c.HeadDim);               // 576 / 9
        Assert.Equal(30, c.NumLayers);
        Assert.Equal(100000.0, c.RopeTheta);
        Assert.Equal(0, c.BosTokenId);
        Assert.Equal([0], c.EosTokenIds);
    }

    [Fact]
    public void Llama32_has_llama3_rope_scaling()
    {
        var c = LoadAsset("llama-3.2-1b.json");
        Assert.Equal(new RopeScaling("llama3", 32.0, 1.0, 4.0, 8192), c.RopeScaling);
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.Equal(16, c.NumLayers);
        Assert.Equal(64, c.HeadDim);
        Assert.Equal(8, c.NumKvHeads);
        Assert.Equal(131072, c.MaxPositions);
        Assert.Equal(128256, c.VocabSize);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal(128000, c.BosTokenId);
    }

    [Fact]
    public void Mistral_records_sliding_window_and_has_no_bias()
    {
        var c = LoadAsset("mistral-7b-v0.1.json");
        Assert.Equal("mistral", c.ModelType);
        Assert.Equal(4096, c.SlidingWindow);
        Assert.Equal(128, c.HeadDim);
        Assert.Equal(14336, c.IntermediateSize);
        Assert.False(c.TieWordEmbeddings);
        Assert.False(c.QkvBias || c.OutputBias || c.MlpBias || c.QkNorm);
        Assert.Equal(32768, c.MaxPositions);
    }

    [Fact]
    public void Qwen25_has_qkv_bias_and_no_sliding_window_when_disabled()
    {
        var c = LoadAsset("qwen2.5-0.5b.json");
        Assert.Equal("qwen2", c.ModelType);
        Assert.True(c.QkvBias);
        Assert.False(c.OutputBias);
        Assert.False(c.QkNorm);
        Assert.Null(c.SlidingWindow);              // use_sliding_window: false
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal(14, c.NumHeads);
        Assert.Equal(2, c.NumKvHeads);
        Assert.Equal(64, c.HeadDim);               // 896 / 14
        Assert.Equal(1_000_000.0, c.RopeTheta);
        Assert.Equal(1e-6f, c.RmsNormEps);
        Assert.Equal([151643], c.EosTokenIds);
    }

    [Fact]
    public void Qwen3_has_explicit_head_dim_and_qk_norm()
    {
        var c = LoadAsset("qwen3-0.6b.json");
        Assert.Equal("qwen3", c.ModelType);
        Assert.Equal(128, c.HeadDim);              // not 1024 / 16 = 64
        Assert.True(c.QkNorm);
        Assert.False(c.QkvBias);
        Assert.False(c.OutputBias);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal(28, c.NumLayers);
        Assert.Equal(8, c.NumKvHeads);
        Assert.Null(c.SlidingWindow);
        Assert.Null(c.RopeScaling);
        Assert.Equal(151643, c.BosTokenId);
        Assert.Equal([151645], c.EosTokenIds);
    }

    public static TheoryData<string> Assets() =>
        ["tinyllama-1.1b.json", "smollm2-135m.json", "llama-3.2-1b.json", "mistral-7b-v0.1.json", "qwen2.5-0.5b.json", "qwen3-0.6b.json"];

    [Theory]
    [MemberData(nameof(Assets))]
    public void ToJson_round_trips_and_names_the_transformers_class(string asset)
    {
        var c = LoadAsset(asset);
        string json = c.ToJson();
        var back = ModelConfig.Parse(json, "roundtrip/config.json");
        Assert.Equal(c, back);

        using var doc = JsonDocument.Parse(json);
        string arch = doc.RootElement.GetProperty("architectures")[0].GetString()!;
        using var original = JsonDocument.Parse(File.ReadAllText(IoTestPaths.ModelConfig(asset)));
        Assert.Equal(original.RootElement.GetProperty("architectures")[0].GetString(), arch);
        // Every architecture-deciding key the original has is written with the same value.
        foreach (var key in new[] { "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                    "num_attention_heads", "num_key_value_heads", "tie_word_embeddings", "rope_theta",
                                    "rms_norm_eps", "bos_token_id", "eos_token_id", "torch_dtype" })
            Assert.True(SameValue(original.RootElement.GetProperty(key), doc.RootElement.GetProperty(key)), $"{asset}: {key} changed");
    }

    /// <summary>Numbers by value (1e-05 and 1E-05 are the same), everything else structurally.</summary>
    static bool SameValue(JsonElement a, JsonElement b) =>
        a.ValueKind == JsonValueKind.Number && b.ValueKind == JsonValueKind.Number
            ? (float)a.GetDouble() == (float)b.GetDouble()
            : JsonElement.DeepEquals(a, b);

    [Fact]
    public void Equality_compares_eos_lists_by_value()
    {
        var a = LoadAsset("tinyllama-1.1b.json") with { EosTokenIds = [2, 7] };
        var b = a with { EosTokenIds = [2, 7] };
        Assert.Equal(a, b);
        Assert.NotEqual(a, a with { EosTokenIds = [2] });
        Assert.NotEqual(a, a with { HeadDim = 32 });
    }

    // ---- defaults and variants, on minimal configs ----

    static string Minimal(string modelType, string extra = "") =>
        $$"""{"model_type":"{{modelType}}","vocab_size":100,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4{{extra}}}""";

    [Fact]
    public void Defaults_follow_the_transformers_config_classes()
    {
        var c = ModelConfig.Parse(Minimal("llama"), "min.json");
        Assert.Equal(4, c.NumKvHeads);             // = num_attention_heads
        Assert.Equal(16, c.HeadDim);               // 64 / 4
        Assert.Equal(1e-6f, c.RmsNormEps);
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.False(c.TieWordEmbeddings);
        Assert.Null(c.RopeScaling);
        Assert.Empty(c.EosTokenIds);
        Assert.Null(c.BosTokenId);
        Assert.Equal("float32", c.TorchDtype);
        Assert.Equal(4096, ModelConfig.Parse(Minimal("mistral"), "m.json").SlidingWindow);  // MistralConfig default
        Assert.Null(ModelConfig.Parse(Minimal("mistral", ",\"sliding_window\":null"), "m.json").SlidingWindow);
        Assert.Equal(128, ModelConfig.Parse(Minimal("qwen3"), "q.json").HeadDim);          // Qwen3Config default
        Assert.True(ModelConfig.Parse(Minimal("qwen2"), "q.json").QkvBias);
    }

    [Fact]
    public void Llama_biases_eos_lists_dtype_alias_and_sliding_window_switch()
    {
        var c = ModelConfig.Parse(Minimal("llama", ",\"attention_bias\":true,\"mlp_bias\":true,\"eos_token_id\":[128001,128008,128009],\"dtype\":\"float16\""), "b.json");
        Assert.True(c.QkvBias && c.OutputBias && c.MlpBias);
        Assert.Equal([128001, 128008, 128009], c.EosTokenIds);
        Assert.Equal("float16", c.TorchDtype);
        Assert.Equal(c, ModelConfig.Parse(c.ToJson(), "b2.json"));

        var q = ModelConfig.Parse(Minimal("qwen2", ",\"use_sliding_window\":true,\"sliding_window\":512"), "q.json");
        Assert.Equal(512, q.SlidingWindow);
        Assert.Equal(q, ModelConfig.Parse(q.ToJson(), "q2.json"));

        var q3 = ModelConfig.Parse(Minimal("qwen3", ",\"attention_bias\":true,\"head_dim\":32"), "q3.json");
        Assert.True(q3.QkvBias && q3.OutputBias && q3.QkNorm);
        Assert.Equal(32, q3.HeadDim);
        Assert.Equal(q3, ModelConfig.Parse(q3.ToJson(), "q3b.json"));
    }

    [Fact]
    public void Sliding_window_layers_follow_max_window_layers_and_layer_types()
    {
        var q = ModelConfig.Parse(Minimal("qwen2", ",\"use_sliding_window\":true,\"sliding_window\":512,\"max_window_layers\":1"), "q.json");
        Assert.Equal(1, q.MaxWindowLayers);
        Assert.Equal([0, 512], new[] { q.AttentionWindow(0), q.AttentionWindow(1) });
        Assert.Equal(q, ModelConfig.Parse(q.ToJson(), "q2.json"));
        Assert.Equal(28, ModelConfig.Parse(Minimal("qwen2"), "q.json").MaxWindowLayers); // Qwen2Config default
        Assert.Equal(0, ModelConfig.Parse(Minimal("qwen2"), "q.json").AttentionWindow(1)); // use_sliding_window false

        var m = ModelConfig.Parse(Minimal("mistral", ",\"sliding_window\":64,\"layer_types\":[\"full_attention\",\"sliding_attention\"]"), "m.json");
        Assert.Equal([false, true], m.SlidingLayerTypes!);
        Assert.Equal([0, 64], new[] { m.AttentionWindow(0), m.AttentionWindow(1) });
        Assert.Equal(m, ModelConfig.Parse(m.ToJson(), "m2.json"));
        Assert.NotEqual(m, m with { SlidingLayerTypes = null });
        Assert.Equal([4096, 4096], Enumerable.Range(0, 2).Select(ModelConfig.Parse(Minimal("mistral"), "m.json").AttentionWindow));

        var e = Assert.Throws<PeftException>(() => ModelConfig.Parse(Minimal("mistral", ",\"layer_types\":[\"full_attention\"]"), "bad.json"));
        Assert.Contains("bad.json", e.Message); Assert.Contains("layer_types", e.Message); Assert.Contains("num_hidden_layers", e.Message);
        e = Assert.Throws<PeftException>(() => ModelConfig.Parse(Minimal("mistral", ",\"layer_types\":[\"full_attention\",\"local\"]"), "bad.json"));
        Assert.Contains("layer_types\"[1]", e.Message);
    }

    [Fact]
    public void Rope_scaling_variants()
    {
        var lin = ModelConfig.Parse(Minimal("llama", ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":4.0}"), "r.json");
        Assert.Equal(new RopeScaling("linear", 4.0), lin.RopeScaling);
        Assert.Equal(lin, ModelConfig.Parse(lin.ToJson(), "r2.json"));
        var def = ModelConfig.Parse(Minimal("llama", ",\"rope_scaling\":{\"rope_type\":\"default\"}"), "r.json");
        Assert.Null(def.RopeScaling);
    }

    static void AssertError(string json, params string[] fragments)
    {
        var e = Assert.Throws<PeftException>(() => ModelConfig.Parse(json, "bad/config.json"));
        Assert.Contains("bad/config.json", e.Message);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
    }

    [Fact]
    public void Unsupported_model_type_lists_the_supported_ones()
    {
        AssertError(Minimal("gemma"), "\"gemma\"", "llama, mistral, qwen2, qwen3");
        AssertError("""{"vocab_size":10}""", "model_type", "llama, mistral, qwen2, qwen3");
    }

    [Fact]
    public void Unsupported_rope_types_name_the_key_and_list_the_supported()
    {
        AssertError(Minimal("llama", ",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4.0}"),
            "rope_scaling.rope_type", "\"yarn\"", "default, linear, llama3");
        AssertError(Minimal("llama", ",\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":2.0}"),
            "rope_scaling.type", "\"dynamic\"", "default, linear, llama3");
        AssertError(Minimal("llama", ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0}"),
            "rope_scaling.low_freq_factor");
        AssertError(Minimal("llama", ",\"rope_scaling\":{\"rope_type\":\"linear\"}"), "rope_scaling.factor");
        AssertError(Minimal("llama", ",\"rope_scaling\":{\"factor\":2.0}"), "rope_type");
        AssertError(Minimal("llama", ",\"rope_scaling\":\"linear\""), "\"rope_scaling\"");
    }

    [Fact]
    public void Missing_keys_and_wrong_types_name_the_key()
    {
        AssertError("""{"model_type":"llama","vocab_size":100,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4}""",
            "\"hidden_size\"", "missing");
        AssertError(Minimal("llama").Replace("\"num_hidden_layers\":2", "\"num_hidden_layers\":\"2\""), "\"num_hidden_layers\"", "integer");
        AssertError(Minimal("llama").Replace("\"vocab_size\":100", "\"vocab_size\":100.5"), "\"vocab_size\"");
        AssertError(Minimal("llama").Replace("\"vocab_size\":100", "\"vocab_size\":-3"), "\"vocab_size\"", "positive");
        AssertError(Minimal("llama", ",\"tie_word_embeddings\":\"yes\""), "\"tie_word_embeddings\"", "true or false");
        AssertError(Minimal("llama", ",\"rope_theta\":\"big\""), "\"rope_theta\"", "number");
        AssertError(Minimal("llama", ",\"eos_token_id\":[1,\"x\"]"), "\"eos_token_id\"");
        AssertError(Minimal("llama", ",\"num_key_value_heads\":3"), "num_key_value_heads");
        AssertError(Minimal("llama", ",\"hidden_act\":\"gelu\""), "hidden_act", "gelu");
        AssertError(Minimal("llama", ",\"torch_dtype\":\"int8\""), "torch_dtype", "int8");
        AssertError(Minimal("llama").Replace("\"hidden_size\":64", "\"hidden_size\":66"), "head_dim");
        AssertError("{\"model_type\":", "not valid JSON");
        AssertError("[1]", "JSON object");
    }

    [Fact]
    public void Load_reports_a_missing_file_and_accepts_a_model_folder()
    {
        using var scratch = new ScratchDir();
        var e = Assert.Throws<PeftException>(() => ModelConfig.Load(scratch.File("config.json")));
        Assert.Contains("config.json", e.Message);
        File.Copy(IoTestPaths.ModelConfig("qwen3-0.6b.json"), scratch.File("config.json"));
        Assert.Equal(LoadAsset("qwen3-0.6b.json"), ModelConfig.Load(scratch.Path));
    }

    [Fact]
    public void ToJson_refuses_configs_the_architecture_cannot_express()
    {
        var q = LoadAsset("qwen2.5-0.5b.json");
        Assert.Throws<PeftException>(() => (q with { QkvBias = false }).ToJson());
        Assert.Throws<PeftException>(() => (LoadAsset("qwen3-0.6b.json") with { QkNorm = false }).ToJson());
        Assert.Throws<PeftException>(() => (LoadAsset("tinyllama-1.1b.json") with { OutputBias = true }).ToJson());
        Assert.Throws<PeftException>(() => (q with { ModelType = "gpt2" }).ToJson());
    }
}
