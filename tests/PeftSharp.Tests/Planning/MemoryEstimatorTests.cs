using System.Reflection;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Optim;
using PeftSharp.Peft;
using PeftSharp.Planning;
using PeftSharp.Quantization;
using PeftSharp.Tensors;
using PeftSharp.Tests.IO;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Planning;

/// <summary>Each term of the memory estimate against what the real objects of this code base allocate.</summary>
public class MemoryEstimatorTests
{
    static ModelConfig Bf16(string variant) => ParameterCounterTests.Variant(variant) with { TorchDtype = "bfloat16" };

    static void Step(ModelPass pass, ModelConfig c, int batch, int seq)
    {
        var rng = new Random(5);
        int n = batch * seq;
        var ids = TinyModels.RandomIds(rng, n, c.VocabSize);
        var targets = TinyModels.RandomIds(rng, n, c.VocabSize);
        var pos = Enumerable.Range(0, n).Select(i => i % seq).ToArray();
        pass.ForwardBackward(ids, pos, ReadOnlySpan<int>.Empty, targets, 1f / n);
    }

    [Theory]
    [InlineData("llama", false)]
    [InlineData("llama", true)]
    [InlineData("qwen3", false)]
    [InlineData("qwen3", true)]
    [InlineData("qwen2", false)]
    public void ModelPassActivationsAreExact(string variant, bool recompute)
    {
        var c = Bf16(variant);
        using var model = CausalLM.CreateRandom(c, DType.BF16, 1);
        using var pass = Passes.Model(model, 2, 8, recompute);
        Step(pass, c, 2, 8);
        Assert.Equal(pass.ActivationBytes, MemoryEstimator.ModelPassActivationBytes(c, 2, 8, recompute));
    }

    [Theory]
    [InlineData("lora", "all-linear", false)]
    [InlineData("dora", "q_proj,v_proj", true)]
    [InlineData("dora", "all-linear", false)]
    public void PeftTermsMatchTheBuiltModel(string method, string targets, bool recompute)
    {
        var c = Bf16("llama-biases");
        const int rank = 4, batch = 2, seq = 8;
        var originals = RandomWeights.Create(c, DType.BF16, 1);
        long originalBytes = originals.Values.Sum(t => t.ByteLength);
        using var pm = new PeftModel(TinyModels.Build(c, originals), TestCompute.Cpu);
        var names = ParameterCounter.ParseTargets(targets);
        pm.AddAdapter("a", new LoraConfig { R = rank, LoraAlpha = 8, TargetModules = names, UseDora = method == "dora" });
        using var pass = Passes.Model(pm, batch, seq, recompute);
        Step(pass, c, batch, seq);

        var e = MemoryEstimator.Estimate(c, method, batch, seq, rank, targets, recompute, "adamw");
        var m = pm.Model;
        var norms = m.Layers.SelectMany(l => l.Norms()).Append(m.FinalNorm).Sum(n => n.Weight.Value.ByteLength + n.Weight.Grad.ByteLength);
        var biasCopies = m.Layers.SelectMany(l => l.Projections).Sum(p => CausalLM.BaseLinear(p).Bias?.ByteLength ?? 0);
        Assert.Equal(originalBytes + norms + biasCopies, e.WeightsBytes);
        var trainable = pm.TrainableParameters().ToList();
        Assert.Equal(trainable.Sum(p => p.Value.ByteLength), e.AdapterBytes);
        Assert.Equal(trainable.Sum(p => p.Grad.ByteLength), e.GradientBytes);
        Assert.Equal(pass.ActivationBytes, e.ActivationBytes);   // the pass counts what the adapters saved in it
        foreach (var o in originals.Values) o.Dispose();
    }

    [Fact]
    public void FullFineTuningTermsMatchTheBuiltModel()
    {
        var c = Bf16("llama-tied");
        var originals = RandomWeights.Create(c, DType.BF16, 1);
        using var model = TinyModels.Build(c, originals);
        model.MakeFullyTrainable();
        var e = MemoryEstimator.Estimate(c, "full", 2, 8, 4, "all-linear", false, "adamw");
        var trainable = model.TrainableParameters().ToList();
        Assert.Equal(originals.Values.Sum(t => t.ByteLength), e.WeightsBytes);
        Assert.Equal(trainable.Sum(p => p.Value.ByteLength), e.AdapterBytes);
        Assert.Equal(trainable.Sum(p => p.Grad.ByteLength), e.GradientBytes);
        Assert.Equal(ParameterCounter.TotalParameters(c), e.TrainableParameters);
        foreach (var o in originals.Values) o.Dispose();
    }

    [Theory]
    [InlineData("adamw")]
    [InlineData("adamw8bit")]
    public void OptimizerStateMatchesTheOptimizer(string name)
    {
        long[] sizes = [100, 4095, 4096, 70_000, 300];
        Optimizer opt = name == "adamw" ? new AdamW(TestCompute.Cpu) : new AdamW8bit(TestCompute.Cpu);
        opt.BeginStep();
        for (int i = 0; i < sizes.Length; i++)
        {
            var value = Numerics.RandomFloats(new Random(i + 1), (int)sizes[i]);
            var grad = Numerics.RandomFloats(new Random(i + 100), (int)sizes[i]);
            opt.Step(i, value, grad, 1e-3f);
        }
        var state = opt.SaveState();
        long bytes = state.Where(kv => kv.Key != "step").Sum(kv => kv.Value.ByteLength);
        foreach (var t in state.Values) t.Dispose();
        Assert.Equal(bytes, MemoryEstimator.OptimizerStateBytes(sizes, name));
    }

    [Theory]
    [InlineData(576, 576)]
    [InlineData(1536, 576)]
    [InlineData(7, 33)]     // blocks straddle rows, last block partial
    public void Nf4BytesMatchTheQuantizer(int rows, int cols)
    {
        var w = Numerics.RandomFloats(new Random(3), rows * cols);
        using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [rows, cols], Quant4Type.NF4, 64, doubleQuant: true);
        long actual = q.PackedByteLength + q.QuantizedAbsmax!.Length + 4L * q.NestedAbsmax!.Length + 4;
        Assert.Equal(actual, MemoryEstimator.Nf4Bytes((long)rows * cols));
    }

    [Fact]
    public void Nf4WithDoubleQuantIsAbout4Point127Bits() =>
        Assert.InRange(MemoryEstimator.Nf4BitsPerParameter(576L * 1536), 4.126, 4.128);

    [Fact]
    public void TermsMoveTheWayTheMethodsDiffer()
    {
        var c = ModelConfig.Load(IoTestPaths.ModelConfig("tinyllama-1.1b.json"));
        MemoryEstimate E(string m, bool ck = false, string opt = "adamw", int batch = 4) =>
            MemoryEstimator.Estimate(c, m, batch, 256, 16, "all-linear", ck, opt);
        Assert.True(E("lora", ck: true).ActivationBytes < E("lora").ActivationBytes);
        Assert.True(E("qlora").WeightsBytes < E("lora").WeightsBytes / 2);   // embeddings + lm_head stay BF16
        Assert.True(E("dora").ActivationBytes > E("lora").ActivationBytes);
        Assert.True(E("lora", opt: "adamw8bit").OptimizerBytes < E("lora").OptimizerBytes / 3);
        Assert.True(E("full").TotalBytes > E("lora").TotalBytes);
        Assert.Equal(16L * ParameterCounter.TotalParameters(c), E("full").AdapterBytes + E("full").GradientBytes + E("full").OptimizerBytes);
        // activations are linear in tokens (attention is tiled: no seq² term)
        Assert.Equal(2 * MemoryEstimator.ModelPassActivationBytes(c, 4, 256, false), MemoryEstimator.ModelPassActivationBytes(c, 8, 256, false));
    }

    [Theory]
    [InlineData("sgd", "adamw", "method \"sgd\"")]
    [InlineData("lora", "lion", "optimizer \"lion\"")]
    public void BadMethodOrOptimizerIsNamed(string method, string optimizer, string fragment)
    {
        var c = TinyModels.Config();
        var e = Assert.Throws<PeftException>(() => MemoryEstimator.Estimate(c, method, 1, 8, 4, "all-linear", false, optimizer));
        Assert.Contains(fragment, e.Message);
    }
}
