using PeftSharp.Compute;
using PeftSharp.Data;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Quantization;
using PeftSharp.Tensors;
using PeftSharp.Training;

namespace PeftSharp.Cuda;

/// <summary>
/// A whole LoRA / QLoRA training step of a tiny Llama (2 layers, hidden 64, GQA 4/2 heads, a packed batch) on the
/// device against the CPU trainer from identical weights: the loss, the gradient norm and every updated adapter
/// tensor. Bound 1e-4 relative: a step chains a few dozen float32 kernels whose summation orders differ, and AdamW's
/// first step divides by √v, so tiny gradient differences show in the update.
/// </summary>
internal static class StepChecks
{
    public const double Tolerance = 1e-4;

    public static ModelConfig TinyLlama(int? slidingWindow = null) => new()
    {
        ModelType = slidingWindow == null ? "llama" : "mistral", VocabSize = 96, HiddenSize = 64, IntermediateSize = 112, NumLayers = 2,
        NumHeads = 4, NumKvHeads = 2, HeadDim = 16, RmsNormEps = 1e-5f, MaxPositions = 64, SlidingWindow = slidingWindow,
    };

    /// <summary>Two rows of 12 tokens; the second row packs two sequences (segment ids, positions restarting).</summary>
    public static Batch PackedBatch(int vocab)
    {
        const int batch = 2, seq = 12, n = batch * seq;
        var r = new Random(5);
        var ids = Enumerable.Range(0, n).Select(_ => r.Next(vocab)).ToArray();
        var seg = Enumerable.Range(0, n).Select(i => i < seq ? 0 : (i % seq < 5 ? 1 : 2)).ToArray();
        var pos = Enumerable.Range(0, n).Select(i => i < seq || i % seq < 5 ? i % seq : i % seq - 5).ToArray();
        var targets = Enumerable.Range(0, n).Select(i => i % seq == seq - 1 || i == seq + 4 ? -100 : ids[i + 1]).ToArray();
        targets[2] = -100;   // a masked prompt token
        return new Batch
        {
            BatchSize = batch, SeqLen = seq, InputIds = ids, Targets = targets, Positions = pos, SegmentIds = seg,
            TrainedTokens = targets.Count(t => t != -100), ExampleCount = 3,
        };
    }

    /// <summary>(loss, grad norm, updated trainable values) of one trainer step on <paramref name="compute"/>.</summary>
    public static (double Loss, double GradNorm, float[][] Values) RunStep(ComputeContext compute, ComputeContext host, ModelConfig c, bool qlora, Batch batch)
    {
        var model = qlora ? CausalLM.CreateRandomQuantized(c, DType.BF16, 7, new QuantizeOptions(Quant4Type.NF4, true, 64), host)
            : CausalLM.CreateRandom(c, DType.BF16, 7);
        using var pm = new PeftModel(model, compute);
        pm.AddAdapter("check", new LoraConfig { R = 4, LoraAlpha = 8, TargetModulesRegex = "all-linear" }, 3);
        // B = 0 at init would leave A's gradient zero: give B seeded values so both factors train.
        int seed = 50;
        foreach (var p in pm.TrainableParameters().Where(p => p.Name.Contains("lora_B")))
            KernelChecks.RandomFloats(seed++, (int)p.Count, 0.05f).CopyTo(p.Value.Floats);
        using var trainer = new Trainer(pm, compute, new TrainerOptions
        {
            LearningRate = 1e-3, LrScheduler = "constant", BatchSize = batch.BatchSize, MaxLength = batch.SeqLen, MaxSteps = 10,
            MaxGradNorm = 0.5, WeightDecay = 0.01,
        });
        var (loss, norm, _) = trainer.Step([batch], 0, new LrSchedule("constant", 1e-3, 0, int.MaxValue));
        return (loss, norm, trainer.Parameters.Select(p => p.Value.Floats.ToArray()).ToArray());
    }

    public static CheckResult Compare(string name, ComputeContext device, ComputeContext cpu, ModelConfig c, bool qlora)
    {
        var batch = PackedBatch(c.VocabSize);
        var want = RunStep(cpu, cpu, c, qlora, batch);
        var got = RunStep(device, cpu, c, qlora, batch);
        double err = Math.Max(CheckResult.RelativeError(got.Loss, want.Loss), CheckResult.RelativeError(got.GradNorm, want.GradNorm));
        if (got.Values.Length != want.Values.Length) err = double.PositiveInfinity;
        else for (int i = 0; i < got.Values.Length; i++) err = Math.Max(err, CheckResult.RelativeError(got.Values[i], want.Values[i]));
        return new CheckResult(name, err, Tolerance);
    }
}
