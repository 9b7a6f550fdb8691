using PeftSharp.Models;
using PeftSharp.Optim;
using PeftSharp.Peft;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.QLoRA;

/// <summary>QLoRA training with 8-bit AdamW tracks 32-bit AdamW (bitsandbytes' claim, reference §6.1).</summary>
public class Optimizer8bitTrainingTests
{
    static List<double> Train(Optimizer opt, int steps)
    {
        var c = QLoraTestModels.Config();
        var w = TinyModels.Weights(c, 17);
        try
        {
            using var pm = new PeftModel(QLoraTestModels.Quantized(c, w), TestCompute.Cpu);
            // r = 64: every A (64·64) and most B (≥ 64·64; k/v are 32·64) reach bitsandbytes' 4096-element threshold for 8-bit states
            pm.AddAdapter("default", new LoraConfig { R = 64, LoraAlpha = 16, TargetModulesRegex = "all-linear" }, 3);
            var ps = pm.TrainableParameters().ToList();
            const int B = 2, T = 16;
            var rng = new Random(5);
            var ids = TinyModels.RandomIds(rng, B * T, c.VocabSize);
            var pos = Enumerable.Range(0, B * T).Select(i => i % T).ToArray();
            var tgt = Enumerable.Range(0, B * T).Select(i => i % T == T - 1 ? -100 : ids[i + 1]).ToArray();
            int counted = tgt.Count(t => t != -100);
            using var pass = Passes.Model(pm, B, T, recompute: false);
            var losses = new List<double>();
            for (int s = 0; s < steps; s++)
            {
                foreach (var p in ps) p.ZeroGrad();
                var (sum, n) = pass.ForwardBackward(ids, pos, [], tgt, 1f / counted);
                losses.Add(sum / n);
                opt.BeginStep();
                for (int i = 0; i < ps.Count; i++) opt.Step(i, ps[i].Value.Floats, ps[i].Grad.Floats, 2e-3f);
            }
            if (opt is AdamW8bit a8)
            {
                Assert.True(Enumerable.Range(0, ps.Count).Where(i => ps[i].Count >= 4096).All(a8.Is8Bit));
                Assert.True(Enumerable.Range(0, ps.Count).Count(a8.Is8Bit) * 2 > ps.Count, "most adapter tensors should use 8-bit states");
            }
            return losses;
        }
        finally { foreach (var t in w.Values) t.Dispose(); }
    }

    [Fact]
    public void AdamW8bit_LossesTrack32BitAdamW()
    {
        const int steps = 12;
        var l32 = Train(new AdamW(TestCompute.Cpu) { WeightDecay = 0 }, steps);
        var l8 = Train(new AdamW8bit(TestCompute.Cpu) { WeightDecay = 0 }, steps);
        Assert.Equal(l32[0], l8[0]);                       // same start
        Assert.True(l32[^1] < 0.8 * l32[0], $"32-bit AdamW did not learn: {l32[0]} → {l32[^1]}");
        for (int s = 0; s < steps; s++)
            Assert.True(Math.Abs(l8[s] - l32[s]) <= 0.03 * l32[s], $"step {s + 1}: 8-bit loss {l8[s]} vs 32-bit {l32[s]}");
    }
}
