using System.Diagnostics;
using PeftSharp.Compute;
using PeftSharp.Data;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Tensors;

namespace PeftSharp.Training;

/// <summary>
/// One training step on random weights of a config's shape (base in BF16; NF4 + double quant for qlora/qdora), timed:
/// the trainer's own step (forward, backward, clipping, AdamW) on a fixed random batch.
/// FLOPs per token follow the PyTorch anchor: 2·(linear params + V·C) forward, the same again for input gradients,
/// 2·(linear params + V·C) more for weight gradients in full fine-tuning, plus causal attention 6·T·Hq·D per layer
/// (two matmuls forward, four backward, over T/2 keys on average), plus the adapter's own products.
/// </summary>
internal sealed class TrainStepBench : IDisposable
{
    readonly PeftModel _pm;
    readonly Trainer _trainer;
    readonly Batch[] _batch;
    readonly LrSchedule _schedule = new("constant", 1e-4, 0, int.MaxValue);
    int _step;

    public ModelConfig Config { get; }
    public TrainingMethod Method { get; }
    public int Batch { get; }
    public int Seq { get; }
    public long TrainableParameters => _trainer.TrainableParameterCount;

    public TrainStepBench(ComputeContext compute, ModelConfig config, TrainingMethod method, LoraConfig lora, int batch, int seq, bool recompute,
        Func<ModelConfig, CausalLM>? build = null, Distributed.ICommunicator? communicator = null)
    {
        Config = config; Method = method; Batch = batch; Seq = seq;
        var model = build != null ? build(config)
            : method.QuantizedBase ? CausalLM.CreateRandomQuantized(config, DType.BF16, 1, new Quantization.QuantizeOptions(), compute)
            : CausalLM.CreateRandom(config, DType.BF16, 1);
        _pm = new PeftModel(model, compute);
        if (method.IsFull) model.MakeFullyTrainable();
        else _pm.AddAdapter("bench", lora with { UseDora = method.Adapter == AdapterKind.Dora }, 1);
        _trainer = new Trainer(_pm, compute, new TrainerOptions
        {
            LearningRate = 1e-4, LrScheduler = "constant", BatchSize = batch, MaxLength = seq, GradientCheckpointing = recompute, MaxSteps = int.MaxValue,
            DeviceSyncsOptimizerState = false,
        }, communicator);
        var rng = new Random(1);
        int n = batch * seq;
        var ids = Enumerable.Range(0, n).Select(_ => rng.Next(config.VocabSize)).ToArray();
        var targets = Enumerable.Range(0, n).Select(i => i % seq == seq - 1 ? -100 : ids[i + 1]).ToArray();
        _batch = [new Batch
        {
            BatchSize = batch, SeqLen = seq, InputIds = ids, Targets = targets,
            Positions = Enumerable.Range(0, n).Select(i => i % seq).ToArray(),
            SegmentIds = [],   // one sequence per row: no packing mask
            TrainedTokens = targets.Count(t => t != -100), ExampleCount = batch,
        }];
    }

    /// <summary>The trainer (its communicator, all-reduced bytes per step).</summary>
    public Trainer Trainer => _trainer;

    /// <summary>Bytes the trainer holds by kind.</summary>
    public MemoryReport Memory() => _trainer.Memory();

    /// <summary>Runs one full optimizer step; returns its wall time in ms.</summary>
    public double Step()
    {
        var sw = Stopwatch.StartNew();
        _trainer.Step(_batch, _step++, _schedule);
        return sw.Elapsed.TotalMilliseconds;
    }

    public double FlopsPerToken()
    {
        var c = Config;
        double linear = _pm.Model.Layers.SelectMany(l => l.Projections).Sum(p => (double)p.InFeatures * p.OutFeatures);
        double head = (double)c.VocabSize * c.HiddenSize;
        double dense = 4 * (linear + head) + (Method.IsFull ? 2 * (linear + head) : 0);
        double attention = 6.0 * Seq * c.NumHeads * c.HeadDim * c.NumLayers;
        double adapters = 6.0 * _pm.TrainableParameters().Where(p => p.Name.Contains(".lora_")).Sum(p => (double)p.Count);
        return dense + attention + adapters;
    }

    public void Dispose()
    {
        _trainer.Dispose();
        _pm.Dispose();
    }
}
