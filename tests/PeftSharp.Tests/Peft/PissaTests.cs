using PeftSharp.Compute;
using System.Text.Json.Nodes;
using PeftSharp.Inference;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Peft;

/// <summary>PiSSA init (PEFT layer.py pissa_init) and its rank-2r LoRA conversion on save.</summary>
public unsafe class PissaTests
{
    /// <summary>The pass the layer calls of this class run in (routing every row to the adapter under test).</summary>
    static readonly PassContext Pass = new(TestCompute.Cpu, AdapterRouting.All("default")) { Training = true, DropoutSeed = 5, DropoutStep = 2 };

    const int Out = 12, In = 20, R = 4;

    /// <summary>A dense layer whose weight has known singular values σ = 8, 6, 5, 4, 1, 0.5, … (orthonormal factors).</summary>
    static (Linear lin, double[] w, double[] sigma) KnownLayer(DType dtype, int seed)
    {
        var rng = new Random(seed);
        var sigma = Enumerable.Range(0, Out).Select(i => i < 4 ? new[] { 8.0, 6, 5, 4 }[i] : 1.0 / (i - 3)).ToArray();
        var w = TruncatedSvdTests.WithSingularValues(rng, Out, In, sigma);
        var t = new Tensor(dtype, Out, In);
        DTypeConvert.FromFloat(w.Select(x => (float)x).ToArray(), dtype, t.Data);
        var stored = new float[Out * In];
        DTypeConvert.ToFloat(t.Data, dtype, stored);          // W as the layer holds it (rounded to dtype)
        return (new Linear("model.layers.0.self_attn.q_proj", t, null), stored.Select(x => (double)x).ToArray(), sigma);
    }

    static (LoraLinear m, LoraAdapter ad) Wrap(Linear lin, string init, float alpha = 8f, bool rs = false)
    {
        var m = new LoraLinear(lin, 0);
        var ad = new LoraAdapter(lin.Name, In, Out, R, alpha, rs, 0f, false);
        Pissa.Initialize(TestCompute.Cpu, m, ad, init, 7);
        m.Add("default", ad);
        return (m, ad);
    }

    static float[] Weight(Linear lin)
    {
        var w = new float[Out * In];
        lin.ReadRows(TestCompute.Cpu, 0, Out, w);
        return w;
    }

    static double[] ScaledProduct(LoraAdapter ad) => LoraMath.Delta(ad);

    [Fact]
    public void Init_FactorsAreTheScaledTopRSvd_AndTheBaseBecomesTheResidual()
    {
        var (lin, w, sigma) = KnownLayer(DType.F32, 1);
        var (m, ad) = Wrap(lin, "pissa", alpha: 16f);   // scaling 4: S_r / 4 under the roots
        var sba = ScaledProduct(ad);
        // s·B·A is the best rank-r approximation: ‖W − s·B·A‖_F = √(Σ_{i>r} σᵢ²) (Eckart–Young).
        double resid = Math.Sqrt(w.Zip(sba, (x, y) => (x - y) * (x - y)).Sum());
        Assert.True(Math.Abs(resid - Math.Sqrt(sigma.Skip(R).Sum(s => s * s))) < 1e-5, $"residual {resid}");
        // A = diag(√(S/s))·Vᵀ: the rows of A are orthogonal with ‖A_j‖² = σ_j / s; likewise the columns of B.
        var a = ad.A.Value.Floats;
        var b = ad.B.Value.Floats;
        for (int j = 0; j < R; j++)
            for (int k = 0; k < R; k++)
            {
                double aa = 0, bb = 0;
                for (int i = 0; i < In; i++) aa += (double)a[j * In + i] * a[k * In + i];
                for (int o = 0; o < Out; o++) bb += (double)b[o * R + j] * b[o * R + k];
                double expected = j == k ? sigma[j] / ad.Scaling : 0;
                Assert.True(Math.Abs(aa - expected) < 1e-5 && Math.Abs(bb - expected) < 1e-5, $"({j},{k}): AAᵀ {aa}, BᵀB {bb}, expected {expected}");
            }
        // W_res + s·B·A = W (float32 base: one float rounding per element).
        var res = Weight(lin);
        for (int i = 0; i < w.Length; i++) Assert.True(Math.Abs(res[i] + sba[i] - w[i]) < 1e-5, $"element {i}");
        Assert.Equal(a.ToArray(), ad.InitialA);
        Assert.Equal(b.ToArray(), ad.InitialB);
        m.Dispose();
        lin.Dispose();
    }

    [Fact]
    public void Init_OnBf16Base_ResidualIsRoundedOnceToBf16()
    {
        // Bound: W_res is stored in BF16 (8 significant bits, round to nearest: unit roundoff 2⁻⁸), so per element
        // |W_res,bf16 + s·B·A − W| ≤ 2⁻⁸·|W − s·B·A| (+ float32 noise).
        var (lin, w, _) = KnownLayer(DType.BF16, 2);
        var (m, ad) = Wrap(lin, "pissa");
        var sba = ScaledProduct(ad);
        var res = Weight(lin);
        double worst = 0;
        for (int i = 0; i < w.Length; i++)
        {
            double exactResidual = w[i] - sba[i];
            double err = Math.Abs(res[i] + sba[i] - w[i]);
            Assert.True(err <= Math.Pow(2, -8) * Math.Abs(exactResidual) + 1e-6, $"element {i}: error {err}, residual {exactResidual}");
            worst = Math.Max(worst, err);
        }
        Assert.True(worst > 0, "BF16 rounding should show somewhere; otherwise the bound is not exercised");
        Assert.Equal(DType.BF16, lin.Weight.DType);
        m.Dispose();
        lin.Dispose();
    }

    [Fact]
    public void InitNiter_RandomizedSvd_NearTheExactFactors_AndStillExactlyPreservesW()
    {
        var (lin, w, _) = KnownLayer(DType.F32, 3);
        var (m, ad) = Wrap(lin, "pissa_niter_4");
        var (lin2, _, _) = KnownLayer(DType.F32, 3);
        var (m2, exact) = Wrap(lin2, "pissa");
        var s1 = ScaledProduct(ad);
        var s2 = ScaledProduct(exact);
        double diff = Math.Sqrt(s1.Zip(s2, (x, y) => (x - y) * (x - y)).Sum()), norm = Math.Sqrt(s2.Sum(x => x * x));
        Assert.True(diff < 1e-3 * norm, $"randomized vs exact rank-r part: {diff / norm:E2}");
        var res = Weight(lin);
        for (int i = 0; i < w.Length; i++) Assert.True(Math.Abs(res[i] + s1[i] - w[i]) < 1e-5);
        m.Dispose(); lin.Dispose(); m2.Dispose(); lin2.Dispose();
    }

    [Fact]
    public void NonFiniteBaseWeight_IsNamed()
    {
        var (lin, _, _) = KnownLayer(DType.F32, 6);
        lin.Weight.Floats[3 * In + 5] = float.NaN;
        var e = Assert.Throws<PeftException>(() => Wrap(lin, "pissa"));
        Assert.Contains("q_proj.weight: element [3, 5]", e.Message);
        lin.Dispose();
    }

    [Theory]
    [InlineData("pissa_niter_")]
    [InlineData("pissa_niter_x")]
    [InlineData("pissa_niter_-1")]
    public void Config_MalformedNiter_IsRejected(string init)
    {
        var e = Assert.Throws<PeftException>(() => LoraConfig.Parse($$"""{"peft_type":"LORA","init_lora_weights":"{{init}}"}""", "cfg.json"));
        Assert.Contains("pissa_niter_K", e.Message);
    }

    [Fact]
    public void LoraInit_RefusesPissa_InsteadOfSilentlyUsingTheDefault()
    {
        using var ad = new LoraAdapter("m", In, Out, R, 8, false, 0, false);
        Assert.Throws<PeftException>(() => LoraInit.Initialize(ad, "pissa", 1));
    }

    static PeftModel Tiny(out ModelConfig c, DType dtype = DType.F32, int seed = 1)
    {
        c = TinyModels.Config("llama", layers: 2);
        return new PeftModel(TinyModels.Build(c, TinyModels.Weights(c, (ulong)seed, dtype)), TestCompute.Cpu);
    }

    static readonly int[] Ids = [1, 5, 9, 33, 2, 17, 40, 8];

    static float[] Logits(PeftModel m)
    {
        var all = new float[Ids.Length * m.Model.Config.VocabSize];
        using var s = Passes.Session(m, Ids.Length);
        s.Feed(Ids, Span<float>.Empty, all);
        return all;
    }

    static double RelErr(float[] a, float[] b) => Numerics.RelativeError(a, b.Select(x => (double)x).ToArray());

    [Theory]
    [InlineData(DType.F32, "pissa", 2e-5)]
    [InlineData(DType.F32, "pissa_niter_2", 2e-5)]
    [InlineData(DType.BF16, "pissa", 2e-2)]   // every residual weight rounded once to BF16 (rel. ≤ 2⁻⁸), through 2 layers
    public void Model_OutputRightAfterPissaInit_EqualsTheOriginalModel(DType dtype, string init, double tol)
    {
        using var pm = Tiny(out _, dtype);
        var before = Logits(pm);
        pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear", InitLoraWeights = init }, 3);
        var after = Logits(pm);
        double e = RelErr(after, before);
        Assert.True(e < tol, $"relative logit change {e:E2}");
        // The base really changed (the adapter is not a no-op on its own): without the adapter the output differs.
        pm.SetActive(null);
        Assert.True(RelErr(Logits(pm), before) > 1e-2);
    }

    static void Perturb(PeftModel pm, string name, int seed)
    {
        var rng = new Random(seed);
        foreach (var m in pm.LoraModules)
            if (m.Adapters.TryGetValue(name, out var a))
                foreach (var p in a.Parameters())
                {
                    var v = p.Value.Floats;
                    for (int i = 0; i < v.Length; i++) v[i] += (float)(rng.NextDouble() - 0.5) * 0.2f;
                }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Save_ConvertsToRank2rLora_ThatReproducesThePissaModelOnTheOriginalBase(bool rsLora, bool dora)
    {
        var cfg = LoraConfig.Parse("""
            {"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":["q_proj","v_proj","down_proj"],
             "init_lora_weights":"pissa","rank_pattern":{"down_proj":2},"alpha_pattern":{"v_proj":6}}
            """, "test") with { UseRsLora = rsLora, UseDora = dora };
        using var pm = Tiny(out _);
        pm.AddAdapter("default", cfg, 5);
        Perturb(pm, "default", 9);                      // as if trained
        var pissaLogits = Logits(pm);
        var dir = TinyRun.Temp("pissa");
        pm.Save(dir);

        var saved = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json")))!;
        Assert.Equal(8, (int)saved["r"]!);
        Assert.Equal(rsLora ? 8 * Math.Sqrt(2) : 16, (double)saved["lora_alpha"]!, 9);
        Assert.True((bool)saved["init_lora_weights"]!);
        Assert.Equal(4, (int)saved["rank_pattern"]!["down_proj"]!);
        Assert.Equal(rsLora ? 6 * Math.Sqrt(2) : 12, (double)saved["alpha_pattern"]!["v_proj"]!, 9);

        // A fresh ORIGINAL base + the saved adapter = the PiSSA model.
        using var fresh = Tiny(out _);
        var report = fresh.LoadAdapter(dir);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        var down = fresh.LoraModules.First(m => m.Name.EndsWith("down_proj")).Adapters["default"];
        Assert.Equal(4, down.Rank);
        var q = fresh.LoraModules.First(m => m.Name.EndsWith("q_proj")).Adapters["default"];
        Assert.Equal(8, q.Rank);
        double e = RelErr(Logits(fresh), pissaLogits);
        Assert.True(e < 1e-4, $"converted adapter on the original base vs PiSSA model: {e:E2}");

        // The raw (unconverted) adapter on the original base does NOT reproduce it: the conversion is what makes it portable.
        var raw = TinyRun.Temp("pissa-raw");
        pm.Save(raw, convertPissa: false);
        var rawCfg = LoraConfig.Load(Path.Combine(raw, "adapter_config.json"));
        Assert.Equal("pissa", rawCfg.InitLoraWeights);
        Assert.Equal(4, rawCfg.R);
        using var fresh2 = Tiny(out _);
        var baseBefore = Logits(fresh2);
        fresh2.LoadAdapter(raw);                        // loading never re-runs PiSSA on the base
        Assert.True(RelErr(Logits(fresh2), pissaLogits) > 1e-2);
        fresh2.SetActive(null);
        Assert.Equal(baseBefore, Logits(fresh2));
    }

    [Fact]
    public void Merge_OfAPissaAdapter_GivesThePissaModel()
    {
        using var pm = Tiny(out _);
        pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = ["q_proj", "o_proj"], InitLoraWeights = "pissa" });
        Perturb(pm, "default", 4);
        var expected = Logits(pm);
        pm.Merge();
        Assert.True(RelErr(Logits(pm), expected) < 1e-5);
    }

    /// <summary>Stands in for a quantized base: an IFrozenProjection that is not the dense Linear.</summary>
    sealed class NotDense(Linear inner) : IFrozenProjection
    {
        public string Name => inner.Name;
        public int InFeatures => inner.InFeatures;
        public int OutFeatures => inner.OutFeatures;
        public void Forward(PassContext pass, float* x, float* y, int n) => inner.Forward(pass, x, y, n);
        public void Backward(PassContext pass, float* dy, float* x, float* dx, int n) => inner.Backward(pass, dy, x, dx, n);
        public IEnumerable<Parameter> Parameters() => [];
        public void ForwardNoBias(ComputeContext ctx, float* x, float* y, int n) => inner.ForwardNoBias(ctx, x, y, n);
        public void WeightTimesTransposed(ComputeContext ctx, float* a, int r, float* wat) => inner.WeightTimesTransposed(ctx, a, r, wat);
        public void RowNormsSquared(ComputeContext ctx, Span<double> dst) => inner.RowNormsSquared(ctx, dst);
        public void AddToWeight(ComputeContext ctx, ReadOnlySpan<float> delta, float alpha) => inner.AddToWeight(ctx, delta, alpha);
        public void ReadRows(ComputeContext ctx, int row0, int rows, Span<float> dst) => inner.ReadRows(ctx, row0, rows, dst);
        public ReadOnlySpan<float> BiasOrEmpty => inner.BiasOrEmpty;
    }

    [Fact]
    public void QuantizedBase_IsRefusedWithTheModuleName_BeforeAnyWeightChanges()
    {
        using var pm = Tiny(out _);
        var before = Logits(pm);
        var layer = pm.Model.Layers[1];
        Assert.True(layer.Replace("model.layers.1.self_attn.v_proj", p => new NotDense((Linear)p)));
        var e = Assert.Throws<PeftException>(() =>
            pm.AddAdapter("default", new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = ["q_proj", "v_proj"], InitLoraWeights = "pissa" }));
        Assert.Contains("model.layers.1.self_attn.v_proj", e.Message);
        Assert.Contains("quantized", e.Message);
        pm.SetActive(null);
        Assert.Equal(before, Logits(pm));        // layer 0 (checked first) was not rewritten either
    }

    [Fact]
    public void Combine_RefusesPissaAdapters()
    {
        using var pm = Tiny(out _);
        pm.AddAdapter("p", new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["q_proj"], InitLoraWeights = "pissa" });
        pm.AddAdapter("l", new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["q_proj"] });
        var e = Assert.Throws<PeftException>(() => pm.Combine(["p", "l"], [1, 1], "c"));
        Assert.Contains("PiSSA", e.Message);
    }

    [Fact]
    public void A_PiSSA_init_on_a_module_refreshes_the_base_row_norms_another_DoRA_adapter_cached()
    {
        var (lin, _, _) = KnownLayer(DType.F32, 3);
        var m = new LoraLinear(lin, 0);
        var dora = new LoraAdapter(lin.Name, In, Out, R, 8f, false, 0f, true);
        LoraInit.Initialize(dora, "gaussian", 11);
        for (int i = 0; i < dora.B.Value.Floats.Length; i++) dora.B.Value.Floats[i] = 0.01f * (i % 7 - 3);
        m.Add("d", dora);
        _ = m.RowNormsSquared(TestCompute.Cpu, dora);            // caches ‖W_i‖² of the original W
        Pissa.Initialize(TestCompute.Cpu, m, new LoraAdapter(lin.Name, In, Out, R, 8f, false, 0f, false), "pissa", 7);

        var w = Weight(lin);                                      // now the PiSSA residual
        var delta = LoraMath.Delta(dora);
        var got = m.RowNormsSquared(TestCompute.Cpu, dora);
        for (int o = 0; o < Out; o++)
        {
            double want = 0;
            for (int i = 0; i < In; i++) want += Math.Pow(w[o * In + i] + delta[o * In + i], 2);
            Assert.True(Math.Abs(got[o] - want) <= 1e-5 * want, $"row {o}: ‖W + s·B·A‖² {got[o]} vs {want}");
        }
    }

    [Fact]
    public void A_PiSSA_init_reports_its_progress()
    {
        using var pm = Tiny(out _);
        var lines = new List<string>();
        var targeted = pm.AddAdapter("default", new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["q_proj", "o_proj"], InitLoraWeights = "pissa" },
            0, null, [], lines.Add);
        Assert.NotEmpty(lines);
        Assert.StartsWith($"PiSSA {targeted.Count}/{targeted.Count} modules", lines[^1]);
        using var plain = Tiny(out _);
        var none = new List<string>();
        plain.AddAdapter("default", new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["q_proj"] }, 0, null, [], none.Add);
        Assert.Empty(none);   // a plain init takes no time worth reporting
    }

    [Fact]
    public void Exact_pissa_on_a_larger_weight_is_the_best_rank_r_approximation()
    {
        // Large enough that the block Krylov SVD stops before its basis spans the space.
        const int rows = 160, cols = 300, r = 6;
        var rng = new Random(17);
        var sigma = Enumerable.Range(0, rows).Select(i => 5.0 * Math.Pow(0.7, i) + 0.01 * (rows - i) / rows).ToArray();
        var w = TruncatedSvdTests.WithSingularValues(rng, rows, cols, sigma);
        var t = new Tensor(DType.F32, rows, cols);
        var wf = t.Floats;
        for (int i = 0; i < wf.Length; i++) wf[i] = (float)w[i];
        var lin = new Linear("model.layers.0.self_attn.q_proj", t, null);
        lin.OwnWeight();
        using var m = new LoraLinear(lin, 0);
        var ad = new LoraAdapter(lin.Name, cols, rows, r, 2 * r, false, 0f, false);
        var exact = TruncatedSvd.Exact(TestCompute.Cpu, wf.ToArray().Select(x => (double)x).ToArray(), rows, cols, r);   // before W becomes the residual
        Pissa.Initialize(TestCompute.Cpu, m, ad, "pissa", 7);
        var got = LoraMath.Delta(ad);

        double diff = 0, norm = 0;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
            {
                double best = 0;
                for (int l = 0; l < r; l++) best += exact.U[i * r + l] * exact.S[l] * exact.Vt[l * cols + j];
                diff += Math.Pow(got[i * cols + j] - best, 2);
                norm += best * best;
            }
        Assert.True(Math.Sqrt(diff / norm) < 1e-6, $"PiSSA's s·B·A vs the exact rank-{r} approximation: {Math.Sqrt(diff / norm):E2}");
    }
}
