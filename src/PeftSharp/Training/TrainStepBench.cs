using System.Diagnostics;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Optim;
using PeftSharp.Peft;
using PeftSharp.Tensors;

namespace PeftSharp.Training;

/// <summary>
/// One training step on random weights of a config's shape (base in BF16; NF4 + double quant for qlora/qdora), timed: forward, backward, AdamW.
/// FLOPs per token follow the PyTorch anchor: 2·(linear params + V·C) forward, the same again for input gradients,
/// 2·(linear params + V·C) more for weight gradients in full fine-tuning, plus causal attention 6·T·Hq·D per layer
/// (two matmuls forward, four backward, over T/2 keys on average), plus the adapter's own products.
/// </summary>
public sealed class TrainStepBench : IDisposable
{
    readonly PeftModel _pm;
    readonly ModelPass _pass;
    readonly List<Parameter> _params;
    readonly Optimizer _opt = new AdamW();
    readonly int[] _ids, _pos, _targets;

    public ModelConfig Config { get; }
    public string Method { get; }
    public int Batch { get; }
    public int Seq { get; }
    public long TrainableParameters => _params.Sum(p => p.Count);

    public TrainStepBench(ModelConfig config, string method, LoraConfig lora, int batch, int seq, bool recompute, Func<ModelConfig, CausalLM>? build = null)
    {
        Config = config; Method = method; Batch = batch; Seq = seq;
        var model = build != null ? build(config)
            : method is "qlora" or "qdora" ? CausalLM.CreateRandomQuantized(config, DType.BF16, 1, new Quantization.QuantizeOptions())
            : CausalLM.CreateRandom(config, DType.BF16, 1);
        _pm = new PeftModel(model);
        if (method == "full") model.MakeFullyTrainable();
        else _pm.AddAdapter("bench", lora with { UseDora = method is "dora" or "qdora" }, 1);
        _params = _pm.TrainableParameters().ToList();
        _pass = new ModelPass(model, batch, seq, recompute);
        var rng = new Random(1);
        int n = batch * seq;
        _ids = Enumerable.Range(0, n).Select(_ => rng.Next(config.VocabSize)).ToArray();
        _pos = Enumerable.Range(0, n).Select(i => i % seq).ToArray();
        _targets = Enumerable.Range(0, n).Select(i => i % seq == seq - 1 ? -100 : _ids[i + 1]).ToArray();
    }

    /// <summary>Runs one full optimizer step; returns its wall time in ms.</summary>
    public double Step()
    {
        var sw = Stopwatch.StartNew();
        foreach (var p in _params) p.ZeroGrad();
        int trained = _targets.Count(t => t != -100);
        _pass.ForwardBackward(_ids, _pos, [], _targets, 1f / trained);
        _opt.BeginStep();
        for (int i = 0; i < _params.Count; i++) _opt.Step(i, _params[i].Value.Floats, _params[i].Grad.Floats, 1e-4f);
        return sw.Elapsed.TotalMilliseconds;
    }

    public double FlopsPerToken()
    {
        var c = Config;
        double linear = _pm.Model.Layers.SelectMany(l => l.Projections).Sum(p => (double)p.InFeatures * p.OutFeatures);
        double head = (double)c.VocabSize * c.HiddenSize;
        double dense = 4 * (linear + head) + (Method == "full" ? 2 * (linear + head) : 0);
        double attention = 6.0 * Seq * c.NumHeads * c.HeadDim * c.NumLayers;
        double adapters = 6.0 * _params.Where(p => p.Name.Contains(".lora_")).Sum(p => (double)p.Count);
        return dense + attention + adapters;
    }

    public void Dispose()
    {
        _pass.Dispose();
        _pm.Dispose();
    }
}
