using PeftSharp.Models;
using PeftSharp.Planning;
using PeftSharp.Tests.IO;

namespace PeftSharp.Tests.Gemma;

/// <summary>gemma2 / gemma3_text / multimodal gemma3 config.json: the real configs, the config classes' defaults, the
/// layer pattern, the writer's round trip, and clear errors.</summary>
public class GemmaConfigTests
{
    static ModelConfig Asset(string name) => ModelConfig.Load(IoTestPaths.ModelConfig(name));

    [Fact]
    public void Gemma_2_2b_config_has_its_published_shape_and_parameter_count()
    {
        var c = Asset("gemma-2-2b.json");
        Assert.Equal("gemma2", c.ModelType);
        Assert.True(c.IsGemma);
        Assert.False(c.QkNorm);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal(256, c.HeadDim);
        Assert.Equal(256.0, c.QueryPreAttnScalar);
        Assert.Equal(1f, c.QueryScale);
        Assert.Equal(50.0, c.AttnLogitSoftcapping);
        Assert.Equal(30.0, c.FinalLogitSoftcapping);
        Assert.Null(c.RopeLocalTheta);
        // Even layers slide over 4096 positions, odd layers are global.
        Assert.Equal(Enumerable.Range(0, 26).Select(l => l % 2 == 0 ? 4096 : 0), Enumerable.Range(0, 26).Select(c.AttentionWindow));
        Assert.Equal(2_614_341_888, ParameterCounter.TotalParameters(c));   // Gemma 2 2B: 2.61B with the tied embedding
        var p = ParameterCounter.Count(c);
        Assert.Equal(256_000L * 2304, p.Embedding);
        Assert.Equal(0, p.LmHead);
        Assert.Equal(26L * 4 * 2304 + 2304, p.Norms);   // four norms per layer, and the final one
        var modules = ParameterCounter.Projections(c);
        Assert.Equal(ParameterCounter.AllLinear, modules.Select(m => m.Name));
        Assert.Equal(2048L * 2304, modules[0].WeightParameters);   // q_proj: 8 heads × 256
        Assert.Equal(1024L * 2304, modules[1].WeightParameters);   // k_proj: 4 kv heads × 256
        Assert.Equal(9216L * 2304, modules[4].WeightParameters);
        Assert.Equal(c, ModelConfig.Parse(c.ToJson(), "round-trip.json"));
    }

    [Fact]
    public void Gemma_3_1b_config_has_its_published_shape_parameter_count_and_layer_pattern()
    {
        var c = Asset("gemma-3-1b-pt.json");
        Assert.Equal("gemma3_text", c.ModelType);
        Assert.True(c.QkNorm);
        Assert.True(c.TieWordEmbeddings);
        Assert.Null(c.AttnLogitSoftcapping);
        Assert.Null(c.FinalLogitSoftcapping);
        Assert.Equal(1_000_000, c.RopeTheta);
        Assert.Equal(10000.0, c.RopeLocalTheta);
        Assert.Equal(6, c.SlidingWindowPattern);
        int[] global = [5, 11, 17, 23];   // (i + 1) % 6 == 0
        Assert.Equal(Enumerable.Range(0, 26).Select(l => global.Contains(l) ? 0 : 512), Enumerable.Range(0, 26).Select(c.AttentionWindow));
        Assert.Equal(Enumerable.Range(0, 26).Select(l => !global.Contains(l)), Enumerable.Range(0, 26).Select(c.UsesLocalRope));
        Assert.Equal(999_885_952, ParameterCounter.TotalParameters(c));   // Gemma 3 1B
        Assert.Equal(26L * (4 * 1152 + 2 * 256) + 1152, ParameterCounter.Count(c).Norms);   // + q_norm, k_norm over head_dim
        Assert.Equal(c, ModelConfig.Parse(c.ToJson(), "round-trip.json"));
    }

    [Fact]
    public void Layer_types_override_the_pattern()
    {
        const string json = """
            {"model_type":"gemma3_text","hidden_size":64,"intermediate_size":128,"num_hidden_layers":3,"num_attention_heads":2,
             "num_key_value_heads":1,"head_dim":32,"vocab_size":100,"sliding_window":8,
             "layer_types":["full_attention","sliding_attention","full_attention"]}
            """;
        var c = ModelConfig.Parse(json, "g3.json");
        Assert.Equal([0, 8, 0], Enumerable.Range(0, 3).Select(c.AttentionWindow));
        Assert.Equal([false, true, false], Enumerable.Range(0, 3).Select(c.UsesLocalRope));
        Assert.Equal(c, ModelConfig.Parse(c.ToJson(), "round-trip.json"));
    }

    [Fact]
    public void Missing_keys_take_the_config_class_defaults()
    {
        var g2 = ModelConfig.Parse("""{"model_type":"gemma2"}""", "g2.json");
        Assert.Equal((256_000, 2304, 9216, 26, 8, 4, 256), (g2.VocabSize, g2.HiddenSize, g2.IntermediateSize, g2.NumLayers, g2.NumHeads, g2.NumKvHeads, g2.HeadDim));
        Assert.Equal((50.0, 30.0, 256.0, 4096, 8192, 10000.0), (g2.AttnLogitSoftcapping, g2.FinalLogitSoftcapping, g2.QueryPreAttnScalar, g2.SlidingWindow, g2.MaxPositions, g2.RopeTheta));
        Assert.True(g2.TieWordEmbeddings);
        var g3 = ModelConfig.Parse("""{"model_type":"gemma3_text","attn_logit_softcapping":null}""", "g3.json");
        Assert.Equal(262_208, g3.VocabSize);
        Assert.Equal((1_000_000.0, 10000.0, 6, 131072), (g3.RopeTheta, g3.RopeLocalTheta, g3.SlidingWindowPattern, g3.MaxPositions));
        Assert.Null(g3.AttnLogitSoftcapping);
        // An explicit null turns gemma2's caps and window off.
        var off = ModelConfig.Parse("""{"model_type":"gemma2","attn_logit_softcapping":null,"final_logit_softcapping":null,"sliding_window":null}""", "g2.json");
        Assert.Null(off.AttnLogitSoftcapping);
        Assert.Null(off.FinalLogitSoftcapping);
        Assert.Null(off.SlidingWindow);
    }

    [Fact]
    public void Multimodal_config_yields_its_text_config_with_outer_dtype_and_token_ids()
    {
        const string json = """
            {"architectures":["Gemma3ForConditionalGeneration"],"model_type":"gemma3","torch_dtype":"bfloat16","eos_token_id":[1,106],
             "text_config":{"model_type":"gemma3_text","hidden_size":2560,"intermediate_size":10240,"num_hidden_layers":34,
               "num_attention_heads":8,"num_key_value_heads":4,"sliding_window":1024,"rope_scaling":{"rope_type":"linear","factor":8.0}},
             "vision_config":{"model_type":"siglip_vision_model","hidden_size":1152}}
            """;
        var c = ModelConfig.Parse(json, "gemma-3-4b/config.json");
        Assert.True(c.TextOfMultimodal);
        Assert.Equal("gemma3_text", c.ModelType);
        Assert.Equal("bfloat16", c.TorchDtype);
        Assert.Equal([1, 106], c.EosTokenIds);
        Assert.Equal(262_208, c.VocabSize);   // Gemma3TextConfig's default: text_config leaves it out
        Assert.Equal("linear", c.RopeScaling!.Type);
        var e = Assert.Throws<PeftException>(() => ModelConfig.Parse("""{"model_type":"gemma3"}""", "mm.json"));
        Assert.Contains("text_config", e.Message);
        e = Assert.Throws<PeftException>(() => ModelConfig.Parse("""{"model_type":"gemma3","text_config":{"hidden_activation":"relu"}}""", "mm.json"));
        Assert.Contains("text_config.hidden_activation", e.Message);
    }

    [Fact]
    public void Bad_gemma_values_are_clear_errors_naming_the_key()
    {
        void Fails(string json, params string[] fragments)
        {
            var e = Assert.Throws<PeftException>(() => ModelConfig.Parse(json, "bad/config.json"));
            Assert.Contains("bad/config.json", e.Message);
            foreach (var f in fragments) Assert.Contains(f, e.Message);
        }
        Fails("""{"model_type":"gemma2","hidden_activation":"gelu"}""", "hidden_activation", "gelu_pytorch_tanh");
        Fails("""{"model_type":"gemma2","attn_logit_softcapping":-1}""", "attn_logit_softcapping");
        Fails("""{"model_type":"gemma2","query_pre_attn_scalar":0}""", "query_pre_attn_scalar");
        Fails("""{"model_type":"gemma3_text","rope_local_base_freq":"x"}""", "rope_local_base_freq");
        Fails("""{"model_type":"gemma3_text","sliding_window_pattern":0}""", "sliding_window_pattern");
    }
}
