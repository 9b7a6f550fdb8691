using PeftSharp.Kernels;
using PeftSharp.Models;

namespace PeftSharp.Tests.IO;

/// <summary>Issue #13's config.json findings: sizes past what any model has are refused naming the key, and a
/// huge max_position_embeddings costs nothing up front.</summary>
public class ModelConfigLimitTests
{
    static string Config(string extra) =>
        $$"""{"model_type":"llama","vocab_size":100,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4{{extra}}}""";

    static PeftException Refused(string extra) => Assert.Throws<PeftException>(() => ModelConfig.Parse(Config(extra), "c.json"));

    [Theory]
    [InlineData(",\"max_position_embeddings\":20000000")]
    [InlineData(",\"max_position_embeddings\":100000000")]
    [InlineData(",\"max_position_embeddings\":2147483647")]
    public void HugeContextLengthIsAcceptedAndItsRopeRowsAreBuiltOnlyWhenUsed(string extra)
    {
        var c = ModelConfig.Parse(Config(extra), "c.json");
        var table = new RopeTable(c.HeadDim, c.MaxPositions, c.RopeTheta, c.RopeScaling);
        Assert.True(table.BuiltPositions <= 256);
        var reference = new RopeTable(c.HeadDim, 2000, c.RopeTheta, c.RopeScaling);
        Assert.Equal(reference.Cos(1999).ToArray(), table.Cos(1999).ToArray());   // grows on demand, same values
        Assert.Equal(reference.Sin(700).ToArray(), table.Sin(700).ToArray());
        Assert.InRange(table.BuiltPositions, 2000, 4096);
    }

    [Fact]
    public void RopeKernelGrowsTheTableForLatePositions()
    {
        var table = new RopeTable(8, 1_000_000, 10000, null);
        var reference = new RopeTable(8, 5000, 10000, null);
        var x = Enumerable.Range(0, 8).Select(i => (float)(i + 1)).ToArray();
        var y = (float[])x.Clone();
        Rope.Forward(TestSupport.TestCompute.Cpu, x, [4999], 1, table);
        Rope.Forward(TestSupport.TestCompute.Cpu, y, [4999], 1, reference);
        Assert.Equal(y, x);
    }

    [Theory]
    [InlineData(",\"num_attention_heads\":1073741824", "num_attention_heads")]
    [InlineData(",\"num_attention_heads\":4096,\"head_dim\":4096", "num_attention_heads")]
    [InlineData(",\"head_dim\":7", "even")]
    [InlineData(",\"num_hidden_layers\":1000000", "num_hidden_layers")]
    [InlineData(",\"intermediate_size\":2000000000", "intermediate_size")]
    [InlineData(",\"vocab_size\":2147483647", "vocab_size")]
    [InlineData(",\"bos_token_id\":100", "bos_token_id")]
    [InlineData(",\"bos_token_id\":-1", "bos_token_id")]
    [InlineData(",\"eos_token_id\":[1,2147483647]", "eos_token_id")]
    [InlineData(",\"max_position_embeddings\":1e8", "max_position_embeddings")]
    public void OutOfRangeFieldsAreRefusedNamingTheKey(string extra, string key)
    {
        var e = Refused(extra);
        Assert.Contains("c.json", e.Message);
        Assert.Contains(key, e.Message);
    }
}
