using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftSharp.Data;
using PeftSharp.IO;
using PeftSharp.Kernels;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Optim;
using PeftSharp.Quantization;
using PeftSharp.Peft;
using PeftSharp.Templates;
using PeftSharp.Tensors;
using PeftSharp.Tokenization;

namespace PeftSharp.Training;

/// <summary>
/// Fine-tunes a model with LoRA, DoRA, QLoRA, QDoRA (LoRA/DoRA over a 4-bit base) or full fine-tuning: AdamW, schedules, gradient accumulation, global-norm
/// clipping, periodic eval and atomic checkpoints from which a resumed run continues bit-identically.
/// The loss of a step is the mean over all trained tokens of its micro-batches (token-weighted).
/// </summary>
public sealed class Trainer : IDisposable
{
    readonly TrainingOptions _o;
    readonly ITrainingObserver _obs;
    readonly PeftModel _pm;
    readonly HfTokenizer _tokenizer;
    readonly PreparedData _data;
    readonly List<Parameter> _params;
    readonly Optimizer _optimizer;
    readonly Dictionary<(int, int), ModelPass> _passes = new();

    /// <summary>Test hook run before each optimizer step (e.g. to inject a non-finite value).</summary>
    internal Action<int, IReadOnlyList<Parameter>>? BeforeStep { get; set; }

    public PeftModel Model => _pm;
    public HfTokenizer Tokenizer => _tokenizer;
    public PreparedData Data => _data;

    public Trainer(TrainingOptions options, ITrainingObserver? observer = null)
    {
        options.Validate();
        _o = options;
        _obs = observer ?? NullObserver.Instance;
        var model = CausalLM.Load(options.ModelDir, options.IsQuantized ? options.Quantize : null);
        _pm = new PeftModel(model);
        try
        {
            _tokenizer = HfTokenizer.Load(options.ModelDir);
            ChatTemplate? template = ChatTemplateSource.TryLoad(options.ModelDir);
            _data = TrainingData.Prepare(options.DataFile, _tokenizer, template, new DataOptions
            {
                Format = DatasetFormats.Parse(options.DataFormat),
                SkipBadLines = options.SkipBadLines,
                TrainOnPrompt = options.TrainOnPrompt,
                EvalFraction = options.EvalFile != null ? 0 : options.EvalFraction,
                EvalFile = options.EvalFile,
                Seed = options.Seed,
            });
            if (options.Method == "full") model.MakeFullyTrainable();
            else _pm.AddAdapter("default", options.Lora with { UseDora = options.Method is "dora" or "qdora" }, (ulong)options.Seed);
            if (model.Quantization != null) _obs.OnMessage($"base model: {model.Quantization}");
            _pm.Dropout.Seed = (ulong)options.Seed;
            _params = _pm.TrainableParameters().ToList();
            _optimizer = options.Optimizer == "adamw8bit"
                ? new AdamW8bit { Beta1 = (float)options.AdamBeta1, Beta2 = (float)options.AdamBeta2, Eps = (float)options.AdamEpsilon, WeightDecay = (float)options.WeightDecay }
                : new AdamW { Beta1 = (float)options.AdamBeta1, Beta2 = (float)options.AdamBeta2, Eps = (float)options.AdamEpsilon, WeightDecay = (float)options.WeightDecay };
        }
        catch
        {
            _pm.Dispose();
            throw;
        }
    }

    BatchOptions Batching => new()
    {
        BatchSize = _o.BatchSize,
        MaxLength = _o.MaxLength,
        Packing = _o.Packing,
        PadId = _tokenizer.EosId ?? 0,
        PadToMaxLength = true,
    };

    ModelPass PassFor(int batch, int seq)
    {
        if (!_passes.TryGetValue((batch, seq), out var p))
            _passes[(batch, seq)] = p = new ModelPass(_pm.Model, batch, seq, _o.GradientCheckpointing);
        return p;
    }

    string CheckpointsDir => Path.Combine(_o.OutputDir, "checkpoints");
    string MetricsPath => Path.Combine(_o.OutputDir, "metrics.jsonl");

    public MemoryReport Memory()
    {
        var trainable = new HashSet<Tensor>(_params.Select(p => p.Value));
        long frozen = _pm.Model.BaseBytes(trainable);   // 4-bit projections at their packed size
        long train = _params.Sum(p => p.Value.ByteLength);
        return new MemoryReport(frozen, train, train, _optimizer.StateBytes, _passes.Values.Sum(p => p.ActivationBytes), ProcessMemory.PeakRssMb());
    }

    /// <summary>Mean loss and perplexity over the eval set (no dropout).</summary>
    public EvalMetrics Evaluate(int step)
    {
        // Eval batches run at the training shape (a short last batch is padded), reusing the training buffers.
        int padId = Batching.PadId;
        return Evaluation.LossEvaluator.Evaluate(_data.Eval, Batching, (b, t) => PassFor(_o.BatchSize, t), step, b => b.PadTo(_o.BatchSize, padId));
    }

    public TrainingResult Run(CancellationToken cancel = default)
    {
        Directory.CreateDirectory(_o.OutputDir);
        var loader = new DataLoader(_data.Train, Batching, _o.Seed);
        int startStep = 0;
        string? resumed = null;
        double resumedLoss = double.NaN;
        if (_o.ResumeFrom != null)
        {
            resumed = _o.ResumeFrom == "latest"
                ? Checkpoint.List(CheckpointsDir).LastOrDefault() ?? throw new PeftException($"--resume: no checkpoint under {CheckpointsDir}")
                : _o.ResumeFrom;
            var state = Checkpoint.Load(resumed, _params, _optimizer);
            resumedLoss = state.Loss ?? double.NaN;
            if (state.Method != _o.Method) throw new PeftException($"{resumed}: checkpoint of method {state.Method}, this run is {_o.Method}");
            if (state.Threads != Threads.Count)
                _obs.OnMessage($"note: checkpoint was written with --threads {state.Threads}, resuming with {Threads.Count}; the loss curve may differ in the last digits");
            startStep = state.Step;
            loader.Seek(new DataLoaderPosition(state.Epoch, state.Batch));
            TruncateMetrics(startStep);
        }
        else if (File.Exists(MetricsPath)) File.Delete(MetricsPath);

        long total = _pm.Model.BaseParameterCount + (_o.Method == "full" ? 0 : _params.Sum(p => p.Count));
        long trainable = _params.Sum(p => p.Count);
        _obs.OnStart(new TrainingPlan(_o.Method, trainable, total, _data.Train.Count, _data.Eval.Count, _data.SkippedCount,
            DatasetFormats.Name(_data.Format), startStep, _o.MaxSteps, resumed, Memory()));

        var schedule = new LrSchedule(_o.LrScheduler, _o.LearningRate, _o.WarmupSteps, _o.MaxSteps);
        var wall = Stopwatch.StartNew();
        EvalMetrics? firstEval = null, lastEval = null;
        if (startStep == 0 && _data.Eval.Count > 0)
        {
            firstEval = Evaluate(0);
            _obs.OnEval(firstEval);
            AppendMetrics(new JsonObject { ["step"] = 0, ["eval_loss"] = firstEval.Loss, ["eval_ppl"] = firstEval.Perplexity });
        }
        double lastLoss = resumedLoss, tokensTotal = 0, secondsTotal = 0;
        string? lastCheckpoint = Checkpoint.List(CheckpointsDir).LastOrDefault();

        for (int step = startStep; step < _o.MaxSteps; step++)
        {
            if (cancel.IsCancellationRequested)
            {
                if (step > startStep && !Checkpoint.List(CheckpointsDir).Any(d => d.EndsWith($"step-{step:D6}", StringComparison.Ordinal)))
                    lastCheckpoint = Checkpoint.Save(CheckpointsDir, new Checkpoint.State(step, loader.Position.Epoch, loader.Position.Batch,
                        _o.Method, _o.Seed, Threads.Count, lastLoss), _params, _optimizer, WriteResult, _o.SaveTotalLimit);
                throw new TrainingInterruptedException(step, lastCheckpoint);
            }
            var sw = Stopwatch.StartNew();
            BeforeStep?.Invoke(step, _params);
            foreach (var p in _params) p.ZeroGrad();
            var batches = new List<Batch>();
            for (int i = 0; i < _o.GradientAccumulationSteps; i++) batches.Add(loader.Next().PadTo(_o.BatchSize, Batching.PadId));
            int trained = batches.Sum(b => b.Targets.Count(t => t != EncodedExample.IgnoreIndex));
            int tokens = batches.Sum(b => b.SegmentIds.Count(s => s != Batch.PaddingSegment));
            double lossSum = 0;
            int counted = 0;
            for (int i = 0; i < batches.Count; i++)
            {
                var b = batches[i];
                _pm.Dropout.Step = (ulong)(step * _o.GradientAccumulationSteps + i);
                var (s, c) = PassFor(b.BatchSize, b.SeqLen).ForwardBackward(b.InputIds, b.Positions, b.SegmentIds, b.Targets,
                    trained > 0 ? 1f / trained : 0f);
                lossSum += s;
                counted += c;
            }
            double loss = counted > 0 ? lossSum / counted : double.NaN;
            double gradNorm = GradientClipping.GlobalNorm(_params);
            if (!double.IsFinite(loss) || !double.IsFinite(gradNorm))
                throw new PeftException($"step {step + 1}: {(double.IsFinite(loss) ? "gradient norm" : "loss")} is " +
                    $"{(double.IsFinite(loss) ? gradNorm : loss)}; training stopped. " +
                    (lastCheckpoint != null ? $"The last good checkpoint is {lastCheckpoint} (resume with --resume)." : "No checkpoint was written yet.") +
                    " Try a lower learning rate or gradient clipping.");
            GradientClipping.Clip(_params, gradNorm, _o.MaxGradNorm);
            double lr = schedule.At(step);
            _optimizer.BeginStep();
            for (int i = 0; i < _params.Count; i++) _optimizer.Step(i, _params[i].Value.Floats, _params[i].Grad.Floats, (float)lr);
            lastLoss = loss;

            double ms = sw.Elapsed.TotalMilliseconds;
            tokensTotal += tokens;
            secondsTotal += ms / 1000;
            var m = new StepMetrics(step + 1, _o.MaxSteps, loss, lr, gradNorm, tokens / (ms / 1000), ms, ProcessMemory.CurrentRssMb(),
                wall.Elapsed.TotalSeconds, loader.Position.Epoch);
            if ((step + 1) % Math.Max(1, _o.LoggingSteps) == 0 || step + 1 == _o.MaxSteps)
                AppendMetrics(new JsonObject
                {
                    ["step"] = m.Step, ["loss"] = Math.Round(loss, 6), ["lr"] = lr, ["grad_norm"] = Math.Round(gradNorm, 6),
                    ["tokens_per_s"] = Math.Round(m.TokensPerSecond, 1), ["step_ms"] = Math.Round(ms, 1), ["rss_mb"] = m.RssMb,
                    ["epoch"] = m.Epoch,
                });
            _obs.OnStep(m);

            bool last = step + 1 == _o.MaxSteps;
            if (_data.Eval.Count > 0 && ((_o.EvalSteps > 0 && (step + 1) % _o.EvalSteps == 0) || last))
            {
                lastEval = Evaluate(step + 1);
                _obs.OnEval(lastEval);
                AppendMetrics(new JsonObject { ["step"] = step + 1, ["eval_loss"] = lastEval.Loss, ["eval_ppl"] = lastEval.Perplexity });
            }
            if (last || (_o.EvalSteps > 0 && (step + 1) % _o.EvalSteps == 0)) AppendMetrics(MemoryLine(step + 1, Memory()));
            if ((_o.SaveSteps > 0 && (step + 1) % _o.SaveSteps == 0) || last)
            {
                var pos = loader.Position;
                lastCheckpoint = Checkpoint.Save(CheckpointsDir, new Checkpoint.State(step + 1, pos.Epoch, pos.Batch, _o.Method, _o.Seed, Threads.Count, loss),
                    _params, _optimizer, WriteResult, _o.SaveTotalLimit);
            }
        }

        string resultDir = Path.Combine(_o.OutputDir, _o.Method == "full" ? "model" : "adapter");
        WriteResult(resultDir);
        var memory = Memory();
        var result = new TrainingResult(_o.MaxSteps - startStep, lastLoss, firstEval, lastEval, resultDir, wall.Elapsed.TotalSeconds,
            secondsTotal > 0 ? tokensTotal / secondsTotal : 0, memory, trainable, total);
        AtomicFile.WriteAllText(Path.Combine(_o.OutputDir, "summary.json"), JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        return result;
    }

    /// <summary>The usable result: the PEFT adapter (LoRA/DoRA), or a full HF checkpoint (full fine-tuning).</summary>
    void WriteResult(string dir)
    {
        Directory.CreateDirectory(dir);
        if (_o.Method == "full")
        {
            HfCheckpoint.Write(dir, _pm.Model, _o.ModelDir, DType.F32);
            return;
        }
        _pm.Save(dir, "default", _o.SaveBf16 ? DType.BF16 : DType.F32, Path.GetFullPath(_o.ModelDir));
    }

    /// <summary>A metrics.jsonl line with the memory accounting (MiB by kind and the peak resident set).</summary>
    static JsonObject MemoryLine(int step, MemoryReport m)
    {
        static double Mb(long b) => Math.Round(b / 1048576.0, 1);
        return new JsonObject
        {
            ["step"] = step, ["mem_frozen_weights_mb"] = Mb(m.FrozenWeightBytes), ["mem_adapter_mb"] = Mb(m.TrainableBytes),
            ["mem_gradients_mb"] = Mb(m.GradientBytes), ["mem_optimizer_mb"] = Mb(m.OptimizerBytes),
            ["mem_activations_peak_mb"] = Mb(m.ActivationBytes), ["peak_rss_mb"] = m.PeakRssMb,
        };
    }

    void AppendMetrics(JsonObject o) => File.AppendAllText(MetricsPath, o.ToJsonString() + "\n");

    /// <summary>On resume, drop metrics lines from after the checkpoint so the file reads as one uninterrupted run.</summary>
    void TruncateMetrics(int step)
    {
        if (!File.Exists(MetricsPath)) return;
        var keep = File.ReadAllLines(MetricsPath).Where(l =>
        {
            try { return (JsonNode.Parse(l)?["step"]?.GetValue<int>() ?? int.MaxValue) <= step; }
            catch (JsonException) { return false; }
        }).ToList();
        AtomicFile.WriteAllText(MetricsPath, keep.Count == 0 ? "" : string.Join("\n", keep) + "\n");
    }

    public void Dispose()
    {
        foreach (var p in _passes.Values) p.Dispose();
        _pm.Dispose();
    }
}
