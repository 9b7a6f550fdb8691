using PeftSharp.Tests.TestSupport;
using PeftSharp.Kernels;
using PeftSharp.Kernels.Reference;
using static PeftSharp.Tests.Kernels.KernelCheck;
using static PeftSharp.Tests.TestSupport.Numerics;

namespace PeftSharp.Tests.Kernels;

public class RopeTests
{
    [Fact]
    public void Default_inverse_frequencies_are_theta_powers()
    {
        var t = new RopeTable(8, 4, 10000, null);
        double[] expected = [1, 0.1, 0.01, 0.001]; // 10000^(-2i/8)
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], t.InvFreq[i], 1e-15);
        var d = new RopeTable(8, 4, 10000, new RopeScaling("default"));
        Assert.Equal(t.InvFreq.ToArray(), d.InvFreq.ToArray());
    }

    [Fact]
    public void Linear_scaling_divides_frequencies_by_factor()
    {
        var t = new RopeTable(8, 16, 10000, new RopeScaling("linear", Factor: 4));
        double[] expected = [0.25, 0.025, 0.0025, 0.00025];
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], t.InvFreq[i], 1e-15);
        // position p with linear scaling = position p/4 unscaled
        Assert.Equal(Math.Cos(12 * 0.025), t.Cos(12)[1], 1e-7);
    }

    [Fact]
    public void Llama3_scaling_matches_hand_computed_values_for_llama_3_2()
    {
        // assets/model-configs/llama-3.2-1b.json: head_dim 64, rope_theta 500000, factor 32, low 1, high 4, original 8192.
        // high_freq_wavelen = 8192/4 = 2048, low_freq_wavelen = 8192/1 = 8192; wavelen = 2π/inv.
        var t = new RopeTable(64, 8, 500000, new RopeScaling("llama3", 32, 1, 4, 8192));
        AssertSameAsConfigFile(t);
        (int I, double Inv)[] expected =
        [
            (0, 1.0),                       // wavelen 2π < 2048: unchanged
            (13, 0.004839421345719893),     // wavelen 1298: unchanged
            (14, 0.0032114459947525913),    // wavelen 1956: unchanged
            (15, 0.001290547928209264),     // wavelen 2948: smooth = (8192/2948.30 − 1)/3 = 0.5928
            (16, 0.00042955679655936815),   // wavelen 4443: smooth = 0.2813
            (17, 9.70828780262767e-05),     // wavelen 6695: smooth = 0.0745
            (20, 8.570255489881478e-06),    // wavelen 22911 > 8192: inv/32 = 2.742481756762073e-4/32
            (31, 9.418306725434909e-08),    // 500000^(−62/64)/32
        ];
        foreach (var (i, inv) in expected)
            Assert.True(Math.Abs(t.InvFreq[i] - inv) <= 1e-12 * inv, $"inv_freq[{i}] = {t.InvFreq[i]:R}, expected {inv:R}");
    }

    /// <summary>The table built from the asset file's own numbers equals the hand-typed one (guards the constants above).</summary>
    static void AssertSameAsConfigFile(RopeTable handTyped)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "assets", "model-configs", "llama-3.2-1b.json"))) dir = dir.Parent;
        Assert.True(dir != null, "assets/model-configs/llama-3.2-1b.json not found above the test binaries");
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir!.FullName, "assets", "model-configs", "llama-3.2-1b.json")));
        var root = doc.RootElement; var rs = root.GetProperty("rope_scaling");
        var scaling = new RopeScaling(rs.GetProperty("rope_type").GetString()!, rs.GetProperty("factor").GetDouble(),
            rs.GetProperty("low_freq_factor").GetDouble(), rs.GetProperty("high_freq_factor").GetDouble(),
            rs.GetProperty("original_max_position_embeddings").GetInt32());
        var fromFile = new RopeTable(root.GetProperty("head_dim").GetInt32(), 8, root.GetProperty("rope_theta").GetDouble(), scaling);
        Assert.Equal(handTyped.InvFreq.ToArray(), fromFile.InvFreq.ToArray());
    }

    [Fact]
    public void Unknown_scaling_type_is_a_user_error_naming_it()
    {
        var ex = Assert.Throws<PeftException>(() => new RopeTable(64, 8, 10000, new RopeScaling("yarn", 4)));
        Assert.Contains("yarn", ex.Message);
    }

    [Fact]
    public void Position_beyond_table_is_a_user_error()
    {
        var t = new RopeTable(8, 4, 10000, null);
        var x = new float[8];
        Assert.Throws<PeftException>(() => Rope.Forward(TestCompute.Cpu, x, [4], 1, t));
    }

    [Theory]
    [InlineData(16, 3, "default")]
    [InlineData(64, 2, "llama3")]
    [InlineData(20, 1, "linear")] // half = 10: vector body plus scalar tail
    public void Forward_and_backward_match_float64_reference(int d, int heads, string type)
    {
        var scaling = type switch
        {
            "llama3" => new RopeScaling("llama3", 8, 1, 4, 256),
            "linear" => new RopeScaling("linear", 2),
            _ => null,
        };
        var table = new RopeTable(d, 600, 10000, scaling);
        var rng = new Random(d * 7 + heads);
        int n = 9;
        var positions = Enumerable.Range(0, n).Select(_ => rng.Next(600)).ToArray();
        var x = RandomFloats(rng, n * heads * d);
        var y = (float[])x.Clone();
        Rope.Forward(TestCompute.Cpu, y, positions, heads, table);
        AssertClose(y, RopeReference.Rotate(ToDouble(x), positions, heads, d, table.InvFreq), 1e-6, "rope forward");

        var g = RandomFloats(rng, n * heads * d);
        var dx = (float[])g.Clone();
        Rope.Backward(TestCompute.Cpu, dx, positions, heads, table);
        AssertClose(dx, RopeReference.Rotate(ToDouble(g), positions, heads, d, table.InvFreq, inverse: true), 1e-6, "rope backward");

        Rope.Backward(TestCompute.Cpu, y, positions, heads, table); // undoes the forward
        AssertClose(y, ToDouble(x), 1e-6, "rope forward∘backward = identity");
    }

    [Fact]
    public void Reference_backward_matches_finite_differences()
    {
        var rng = new Random(11);
        int d = 6, heads = 2; int[] pos = [0, 3, 17];
        var inv = RopeTable.InverseFrequencies(d, 10000, null);
        var x = RandomDoubles(rng, pos.Length * heads * d); var r = RandomDoubles(rng, x.Length);
        var analytic = RopeReference.Rotate(r, pos, heads, d, inv, inverse: true);
        AssertGradient(analytic, () => Dot(RopeReference.Rotate(x, pos, heads, d, inv), r), x, "rope dx");
    }
}
