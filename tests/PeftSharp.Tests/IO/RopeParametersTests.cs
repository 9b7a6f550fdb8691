using System.Text.Json.Nodes;
using PeftSharp.Kernels;
using PeftSharp.Models;

namespace PeftSharp.Tests.IO;

/// <summary>transformers 5's <c>rope_parameters</c> form of the RoPE keys reads as the transformers 4 form does.</summary>
public class RopeParametersTests
{
    /// <summary>A transformers 4 config rewritten as transformers 5 saves it: rope_theta and rope_scaling move into
    /// rope_parameters; with <paramref name="perLayerType"/>, Gemma 3's form nested by layer type (the local base
    /// moving into sliding_attention).</summary>
    static string AsTransformers5(string v4Json, bool perLayerType)
    {
        var o = JsonNode.Parse(v4Json)!.AsObject();
        var text = o["text_config"] as JsonObject ?? o;
        var p = text["rope_scaling"] is JsonObject s ? (JsonObject)s.DeepClone() : new JsonObject { ["rope_type"] = "default" };
        if (p["type"] is { } t && p["rope_type"] == null) { p["rope_type"] = t.DeepClone(); p.Remove("type"); }
        if (text["rope_theta"] is { } theta) p["rope_theta"] = theta.DeepClone();
        text.Remove("rope_theta");
        text.Remove("rope_scaling");
        if (perLayerType)
        {
            var local = new JsonObject { ["rope_type"] = "default", ["rope_theta"] = text["rope_local_base_freq"]?.DeepClone() ?? 10000.0 };
            text.Remove("rope_local_base_freq");
            text["rope_parameters"] = new JsonObject { ["full_attention"] = p, ["sliding_attention"] = local };
        }
        else text["rope_parameters"] = p;
        return o.ToJsonString();
    }

    public static TheoryData<string> Assets() => new(Directory.GetFiles(IoTestPaths.ModelConfig(""), "*.json").Select(Path.GetFileName).Order()!);

    [Theory]
    [MemberData(nameof(Assets))]
    public void Every_shipped_config_reads_the_same_in_the_transformers_5_form(string asset)
    {
        string v4 = File.ReadAllText(IoTestPaths.ModelConfig(asset));
        var expected = ModelConfig.Parse(v4, asset);
        Assert.Equal(expected, ModelConfig.Parse(AsTransformers5(v4, perLayerType: false), asset));
        if (expected.ModelType == "gemma3_text")
            Assert.Equal(expected, ModelConfig.Parse(AsTransformers5(v4, perLayerType: true), asset));
    }

    static string Minimal(string modelType, string extra) =>
        $$"""{"model_type":"{{modelType}}","vocab_size":100,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4{{extra}}}""";

    [Fact]
    public void Values_inside_win_and_a_missing_rope_type_is_default()
    {
        var c = ModelConfig.Parse(Minimal("llama", ""","rope_theta":10000,"rope_parameters":{"rope_theta":500000}"""), "c.json");
        Assert.Equal(500000, c.RopeTheta);
        Assert.Null(c.RopeScaling);
        var lin = ModelConfig.Parse(Minimal("qwen2", ""","rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":1000000}"""), "c.json");
        Assert.Equal(new RopeScaling("linear", 2.0), lin.RopeScaling);
        Assert.Equal(1_000_000, lin.RopeTheta);
        // A nested form whose layer types agree is one RoPE for a model without local RoPE.
        var nested = ModelConfig.Parse(Minimal("mistral", """
            ,"rope_parameters":{"full_attention":{"rope_type":"default","rope_theta":1e6},"sliding_attention":{"rope_type":"default","rope_theta":1e6}}
            """), "c.json");
        Assert.Equal(1e6, nested.RopeTheta);
    }

    [Fact]
    public void Gemma3_takes_its_local_base_from_sliding_attention()
    {
        const string json = """
            {"model_type":"gemma3_text","hidden_size":64,"intermediate_size":128,"num_hidden_layers":6,"num_attention_heads":2,
             "num_key_value_heads":1,"head_dim":32,"vocab_size":100,"sliding_window":8,
             "rope_parameters":{"sliding_attention":{"rope_type":"default","rope_theta":20000},
                                "full_attention":{"rope_type":"linear","factor":8.0,"rope_theta":1000000}}}
            """;
        var c = ModelConfig.Parse(json, "g3.json");
        Assert.Equal(20000, c.RopeLocalTheta);
        Assert.Equal(1_000_000, c.RopeTheta);
        Assert.Equal(new RopeScaling("linear", 8.0), c.RopeScaling);
        Assert.Equal(c, ModelConfig.Parse(c.ToJson(), "round-trip.json"));
    }

    [Fact]
    public void What_cannot_be_computed_is_refused_by_key()
    {
        void Fails(string json, params string[] parts)
        {
            var e = Assert.Throws<PeftException>(() => ModelConfig.Parse(json, "bad/config.json"));
            Assert.Contains("bad/config.json", e.Message);
            foreach (var p in parts) Assert.Contains(p, e.Message);
        }
        Fails(Minimal("llama", ""","rope_parameters":"default" """), "\"rope_parameters\"", "an object");
        Fails(Minimal("llama", ""","rope_parameters":{"rope_type":"yarn","factor":4.0}"""), "rope_parameters.rope_type", "\"yarn\"");
        Fails(Minimal("llama", ""","rope_parameters":{"rope_type":"linear"}"""), "rope_parameters.factor");
        Fails(Minimal("llama", ""","rope_parameters":{"rope_theta":-1}"""), "rope_parameters.rope_theta", "positive");
        Fails(Minimal("llama", ""","rope_parameters":{"rope_theta":1e4,"partial_rotary_factor":0.5}"""), "partial_rotary_factor", "0.5");
        Fails(Minimal("llama", ""","partial_rotary_factor":0.75"""), "partial_rotary_factor", "0.75");
        Fails(Minimal("qwen2", """
            ,"rope_parameters":{"full_attention":{"rope_type":"default","rope_theta":1e6},"sliding_attention":{"rope_type":"default","rope_theta":1e4}}
            """), "rope_parameters.sliding_attention", "one RoPE");
        Fails(Minimal("llama", ""","rope_parameters":{"full_attention":3}"""), "rope_parameters.full_attention", "an object");
        Fails("""
            {"model_type":"gemma3_text","rope_parameters":{"sliding_attention":{"rope_type":"linear","factor":2.0},"full_attention":{"rope_type":"default"}}}
            """, "rope_parameters.sliding_attention.rope_type", "\"linear\"");
    }
}
