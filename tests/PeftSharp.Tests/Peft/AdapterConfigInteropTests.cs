using System.Text.Json.Nodes;
using PeftSharp.Peft;

namespace PeftSharp.Tests.Peft;

/// <summary>adapter_config.json that PEFT 0.13 and older load (they reject keys they do not know), and malformed
/// files refused naming the file and key.</summary>
public class AdapterConfigInteropTests
{
    // LoraConfig.__init__ parameters PEFT 0.13.2 accepts (peft/tuners/lora/config.py at v0.13.2) plus the PeftConfig
    // base fields; anything else makes it raise "unexpected keyword argument".
    static readonly HashSet<string> Peft013Keys =
    [
        "alpha_pattern", "auto_mapping", "base_model_name_or_path", "bias", "fan_in_fan_out", "inference_mode",
        "init_lora_weights", "layer_replication", "layers_pattern", "layers_to_transform", "loftq_config", "lora_alpha",
        "lora_dropout", "megatron_config", "megatron_core", "modules_to_save", "peft_type", "r", "rank_pattern",
        "revision", "target_modules", "task_type", "use_dora", "use_rslora",
    ];

    static JsonObject Written(LoraConfig c) => JsonNode.Parse(c.ToJson())!.AsObject();

    [Fact]
    public void AnAdapterUsingNoNewerFeatureWritesOnlyKeysPeft013Knows()
    {
        var keys = Written(new LoraConfig { R = 8, LoraAlpha = 16, TargetModules = ["q_proj", "v_proj"] }).Select(kv => kv.Key).ToList();
        Assert.All(keys, k => Assert.Contains(k, Peft013Keys));
        Assert.DoesNotContain("eva_config", keys);
        Assert.DoesNotContain("lora_bias", keys);
        Assert.DoesNotContain("exclude_modules", keys);
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys);   // sorted, as PEFT writes them
    }

    [Fact]
    public void ANewerFeatureInUseIsWrittenAndReadBack()
    {
        var c = new LoraConfig { R = 4, TargetModules = ["q_proj"], ExcludeModules = ["model.layers.0.self_attn.q_proj"] };
        var json = Written(c);
        Assert.Equal("model.layers.0.self_attn.q_proj", json["exclude_modules"]![0]!.GetValue<string>());
        Assert.Equal(c.ExcludeModules, LoraConfig.Parse(c.ToJson(), "a.json").ExcludeModules);
    }

    [Fact]
    public void KeysNewerPeftWritesAreStillRead()
    {
        var c = LoraConfig.Parse("""{"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":["q_proj"],"eva_config":null,"lora_bias":false,"exclude_modules":null,"use_qalora":false,"corda_config":null}""", "a.json");
        Assert.Equal(4, c.R);
    }

    [Theory]
    [InlineData("""{"peft_type":"LORA","r":4,"r":8}""", "twice")]
    [InlineData("""{"peft_type":"LORA","r":2.5}""", "\"r\" must be a whole number")]
    [InlineData("""{"peft_type":"LORA","r":1e30}""", "\"r\" must be a whole number")]
    [InlineData("""{"peft_type":"LORA","lora_dropout":-0.5}""", "lora_dropout")]
    [InlineData("""{"peft_type":"LORA","target_modules":"("}""", "target_modules '(' is not a valid regex")]
    [InlineData("""{"peft_type":"LORA","exclude_modules":"[a"}""", "exclude_modules")]
    [InlineData("""{"peft_type":"LORA","rank_pattern":{"q_proj":0}}""", "rank_pattern")]
    [InlineData("""{"peft_type":"LORA","rank_pattern":{"(":4}}""", "rank_pattern key")]
    [InlineData("""{"peft_type":"LORA","target_modules":["q\ud800"]}""", "a.json")]
    public void MalformedAdapterConfigsAreRefusedNamingTheKey(string json, string fragment)
    {
        var e = Assert.Throws<PeftException>(() => LoraConfig.Parse(json, "a.json"));
        Assert.Contains("a.json", e.Message);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void ACatastrophicTargetRegexEndsInAnErrorNotAHang()
    {
        var m = new TargetMatcher(new LoraConfig { TargetModulesRegex = "(a|a)+$|(m+)+x" });
        var e = Assert.Throws<PeftException>(() => m.IsTarget("m" + new string('m', 40)));
        Assert.Contains("catastrophic backtracking", e.Message);
    }
}
