using PeftSharp.Inference;
using PeftSharp.Kernels;
using PeftSharp.Kernels.Reference;
using PeftSharp.Models;
using PeftSharp.Planning;
using PeftSharp.Tests.IO;
using PeftSharp.Tests.TestSupport;
using static PeftSharp.Tests.Kernels.KernelCheck;

namespace PeftSharp.Tests.Models;

/// <summary>
/// LongRoPE (Phi-3/3.5 128k), as transformers: inv_freq = 1 / (ext_factor · θ^(2i/D)) with the long factors when a
/// forward's longest sequence exceeds original_max_position_embeddings, cos and sin × √(1 + ln s / ln original)
/// (s = max_position_embeddings / original), and Phi3ForCausalLM's generation dropping a short-factor cache when the
/// sequence first grows past the original length. Synthetic factors (head_dim 8: four per set) on tiny models; the
/// Phi-3.5 asset for the published lists.
/// </summary>
public class LongRopeTests
{
    static readonly double[] Short = [1.0, 1.5, 2.25, 3.0], Long = [1.25, 4.0, 9.5, 20.0];
    const int Original = 8, MaxPositions = 128;   // s = 16: attention factor √(1 + ln 16 / ln 8) = √(7/3)

    static RopeScaling Scaling() => RopeScaling.LongRope(Short, Long, Original, (double)MaxPositions / Original);

    static ModelConfig Config(int? window = null) =>
        TinyModels.Config("phi3", layers: 2, kvHeads: 2) with { RopeScaling = Scaling(), SlidingWindow = window, MaxPositions = MaxPositions };

    [Fact]
    public void Attention_factor_and_both_frequency_sets_match_the_written_out_formula()
    {
        var s = Scaling();
        Assert.Equal(Math.Sqrt(7.0 / 3), s.AttentionFactor, 1e-15);
        var table = new RopeTable(8, MaxPositions, 10000, s);
        Assert.False(table.UsesLongFactors);
        Assert.Same(table, table.ForLength(Original));
        var longTable = table.ForLength(Original + 1);
        Assert.True(longTable.UsesLongFactors);
        Assert.Same(longTable, table.ForLength(MaxPositions));
        Assert.Same(table, longTable.ForLength(3));
        var (shortInv, attention) = RopeReference.LongRope(8, 10000, Short, Long, Original, MaxPositions, Original);
        var (longInv, _) = RopeReference.LongRope(8, 10000, Short, Long, Original, MaxPositions, Original + 1);
        Assert.Equal(attention, table.AttentionScaling, 1e-15);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(shortInv[i], table.InvFreq[i], 1e-15);
            Assert.Equal(longInv[i], longTable.InvFreq[i], 1e-15);
        }
        Assert.Equal((float)(Math.Cos(5 * longInv[2]) * attention), longTable.Cos(5)[2], 1e-6);
        // No scaling beyond the original length: attention factor 1.
        Assert.Equal(1, RopeScaling.LongRope(Short, Long, Original, 1).AttentionFactor);
        Assert.Null(new RopeTable(8, 16, 10000, null).FactorSwitchLength);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rope_forward_and_backward_with_scaled_cos_sin_match_float64_reference_and_are_adjoint(bool longFactors)
    {
        var table = new RopeTable(8, MaxPositions, 10000, Scaling()).ForLength(longFactors ? 100 : 5);
        var rng = new Random(longFactors ? 2 : 1);
        int heads = 3;
        int[] positions = [0, 4, 99, 17, 63];
        var x = Numerics.RandomFloats(rng, positions.Length * heads * 8);
        var y = (float[])x.Clone();
        Rope.Forward(TestCompute.Cpu, y, positions, heads, table);
        var (inv, attention) = RopeReference.LongRope(8, 10000, Short, Long, Original, MaxPositions, longFactors ? 100 : 5);
        Numerics.AssertClose(y, RopeReference.Rotate(ToDouble(x), positions, heads, 8, inv, scale: attention), 1e-6, "longrope forward");
        var r = Numerics.RandomFloats(rng, x.Length);
        var dx = (float[])r.Clone();
        Rope.Backward(TestCompute.Cpu, dx, positions, heads, table);
        Numerics.AssertClose(dx, RopeReference.Rotate(ToDouble(r), positions, heads, 8, inv, inverse: true, scale: attention), 1e-6, "longrope backward");
        // ⟨r, R x⟩ = ⟨Rᵀ r, x⟩: the backward is the forward's transpose (the gradient of a linear map).
        Assert.Equal(Dot(ToDouble(r), ToDouble(y)), Dot(ToDouble(dx), ToDouble(x)), 1e-4);
    }

    [Theory]
    [InlineData(6, null)]    // within the original length: short factors
    [InlineData(8, null)]    // exactly the original length: still short
    [InlineData(13, null)]   // beyond: long factors for every position
    [InlineData(13, 4)]      // and with phi3's sliding window
    public void Logits_match_float64_reference_on_both_sides_of_the_original_length(int T, int? window)
    {
        var c = Config(window);
        var w = TinyModels.Weights(c, 5);
        using var m = TinyModels.Build(c, w);
        var ids = TinyModels.RandomIds(new Random(T), T, c.VocabSize);
        var (inv, attention) = RopeReference.LongRope(c.HeadDim, c.RopeTheta, Short, Long, Original, MaxPositions, T);
        var expected = Phi3Tests.ReferenceLogits(c, w, ids, inv, attention);
        Numerics.AssertClose(Passes.Logits(m, ids), expected, 1e-4, "longrope logits (inference path)");

        using var pass = Passes.Model(m, 1, T, false);
        pass.Forward(ids, Enumerable.Range(0, T).ToArray(), [], training: false);
        var viaPass = new float[T * c.VocabSize];
        unsafe { fixed (float* lp = viaPass) LmHead.Logits(TestCompute.Cpu.Backend, m.LmHead, (float*)pass.FinalHidden.Data, T, c.HiddenSize, lp); }
        Numerics.AssertClose(viaPass, expected, 1e-4, "longrope logits (training path)");
        foreach (var t in w.Values) t.Dispose();
    }

    [Theory]
    [InlineData(null)]
    [InlineData(3)]
    public void Generation_crossing_the_original_length_recomputes_once_and_equals_full_forwards(int? window)
    {
        var c = Config(window);
        var w = TinyModels.Weights(c, 9);
        using var m = TinyModels.Build(c, w);
        const int T = 15;
        int V = c.VocabSize;
        var ids = TinyModels.RandomIds(new Random(4), T, V);
        using var s = Passes.Session(m, 32);
        var step = new float[V];
        s.Feed(ids.AsSpan(0, 5), step);
        AssertLastRow(m, ids[..5], step);
        for (int t = 5; t < T; t++)
        {
            s.Feed(ids.AsSpan(t, 1), step);
            // transformers: each generation forward sees the whole prefix under the factor set of its length.
            AssertLastRow(m, ids[..(t + 1)], step);
        }
        Assert.Equal(1, s.Recomputes);   // once, at length 9
        Assert.Equal(T, s.Length);

        // The check can fail: position 7's logits differ between the two factor sets.
        var shortRows = Passes.Logits(m, ids[..8]);
        var longRows = Passes.Logits(m, ids[..9]);
        Assert.NotEqual(shortRows.AsSpan(7 * V, V).ToArray(), longRows.AsSpan(7 * V, V).ToArray());
        foreach (var t in w.Values) t.Dispose();
    }

    static void AssertLastRow(CausalLM m, int[] prefix, float[] actual)
    {
        int V = m.Config.VocabSize;
        var full = Passes.Logits(m, prefix);
        Numerics.AssertClose(actual, full.AsSpan((prefix.Length - 1) * V, V).ToArray().Select(x => (double)x).ToArray(), 1e-5,
            $"step logits at length {prefix.Length}");
    }

    [Fact]
    public void Chunked_scoring_uses_the_whole_length_factor_set_from_the_first_chunk()
    {
        var c = Config();
        var w = TinyModels.Weights(c, 12);
        using var m = TinyModels.Build(c, w);
        var ids = TinyModels.RandomIds(new Random(6), 14, c.VocabSize);
        var scored = Passes.Score(m, ids, chunk: 3);
        var full = Passes.Logits(m, ids);
        int V = c.VocabSize;
        for (int t = 1; t < ids.Length; t++)
            Assert.Equal(LmHead.LogProb(full.AsSpan((t - 1) * V, V), ids[t]), scored.LogProbs[t]!.Value, 1e-4);
        foreach (var t in w.Values) t.Dispose();
    }

    [Fact]
    public void Phi35_mini_config_has_the_published_longrope_lists_and_round_trips()
    {
        var c = ModelConfig.Load(IoTestPaths.ModelConfig("phi-3.5-mini-instruct.json"));
        var r = c.RopeScaling!;
        Assert.Equal("longrope", r.Type);
        Assert.Equal(48, r.ShortFactor!.Count);
        Assert.Equal(48, r.LongFactor!.Count);
        Assert.Equal(4096, r.OriginalMaxPositions);
        Assert.Equal(131072, c.MaxPositions);
        Assert.Equal(32, r.Factor);
        Assert.Equal(Math.Sqrt(1 + 5.0 / 12), r.AttentionFactor, 1e-15);   // ln 32 / ln 4096 = 5/12
        Assert.Equal(1.0, r.ShortFactor[0]);
        Assert.Equal(2.8399994373321533, r.ShortFactor[47]);
        Assert.Equal(1.0800000429153442, r.LongFactor[0]);
        Assert.Equal(64.83999633789062, r.LongFactor[47]);
        Assert.Equal(3_821_079_552, ParameterCounter.TotalParameters(c));   // the same 3.8B shape as Phi-3-mini
        Assert.Equal(c, ModelConfig.Parse(c.ToJson(), "round-trip.json"));
        var table = new RopeTable(c.HeadDim, c.MaxPositions, c.RopeTheta, r);
        Assert.Equal(1.0 / 2.8399994373321533 * Math.Pow(10000, -94.0 / 96), table.InvFreq[47], 1e-18);
        Assert.Equal(1.0 / 64.83999633789062 * Math.Pow(10000, -94.0 / 96), table.ForLength(4097).InvFreq[47], 1e-18);
    }

    static string Json(string ropeScaling, string extra = "") =>
        $$"""{"model_type":"phi3","vocab_size":100,"hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,"num_attention_heads":4,"max_position_embeddings":64,"original_max_position_embeddings":16,{{extra}}"rope_scaling":{{ropeScaling}}}""";

    [Fact]
    public void Config_forms_parse_as_transformers_reads_them()
    {
        // "su" (the first Phi-3 128k release) is Phi3Config's old name for longrope.
        var c = ModelConfig.Parse(Json("""{"type":"su","short_factor":[1,1,2,2],"long_factor":[2,3,4,5]}"""), "su.json");
        Assert.Equal("longrope", c.RopeScaling!.Type);
        Assert.Equal(16, c.RopeScaling.OriginalMaxPositions);
        Assert.Equal(4, c.RopeScaling.Factor);
        Assert.Equal(Math.Sqrt(1 + Math.Log(4) / Math.Log(16)), c.RopeScaling.AttentionFactor, 1e-15);
        // An explicit attention_factor wins.
        c = ModelConfig.Parse(Json("""{"rope_type":"longrope","attention_factor":1.5,"short_factor":[1,1,2,2],"long_factor":[2,3,4,5]}"""), "af.json");
        Assert.Equal(1.5, c.RopeScaling!.AttentionFactor);
        Assert.Equal(c, ModelConfig.Parse(c.ToJson(), "round-trip.json"));
    }

    [Theory]
    [InlineData("""{"type":"longrope","short_factor":[1,1,2],"long_factor":[2,3,4,5]}""", "rope_scaling.short_factor", "3 entries")]
    [InlineData("""{"type":"longrope","short_factor":[1,1,2,2]}""", "rope_scaling.long_factor", "missing")]
    [InlineData("""{"type":"longrope","short_factor":[1,0,2,2],"long_factor":[2,3,4,5]}""", "rope_scaling.short_factor\"[1]", "positive")]
    [InlineData("""{"type":"longrope","short_factor":"1,1","long_factor":[2,3,4,5]}""", "rope_scaling.short_factor", "list")]
    [InlineData("""{"type":"longrope","attention_factor":-1,"short_factor":[1,1,2,2],"long_factor":[2,3,4,5]}""", "attention_factor", "positive")]
    public void Bad_longrope_fields_are_errors_naming_the_key(string ropeScaling, string key, string what)
    {
        var e = Assert.Throws<PeftException>(() => ModelConfig.Parse(Json(ropeScaling), "bad.json"));
        Assert.Contains("bad.json", e.Message);
        Assert.Contains(key, e.Message);
        Assert.Contains(what, e.Message);
    }
}
