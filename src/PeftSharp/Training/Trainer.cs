using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftSharp.Compute;
using PeftSharp.Data;
using PeftSharp.Distributed;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Optim;
using PeftSharp.Peft;

namespace PeftSharp.Training;

/// <summary>
/// Trains a model in memory: the active adapter of a <see cref="PeftModel"/> (LoRA, DoRA, over a dense or 4-bit base),
/// or every weight when the base was made fully trainable. AdamW or 8-bit AdamW, schedules, gradient accumulation,
/// global-norm clipping, periodic evaluation, progress to an observer, cancellation between steps. The loss of a step
/// is the mean over all trained tokens of its micro-batches (token-weighted). Files are the caller's business: the
/// folder-based run (<see cref="TrainingRun"/>, <c>peft train</c>) adds checkpoints, metrics and resume on top.
/// With a communicator of N ranks (data parallelism, e.g. under <c>mpirun</c>), every rank runs its own trainer on
/// the same model and data: each takes its slice of every global batch of N·BatchSize sequences, the loss is divided by
/// the global trained-token count, and the trainable gradients are summed over the ranks before clipping and the
/// optimizer step, so N ranks × BatchSize train as one process with batch N·BatchSize.
/// </summary>
public sealed class Trainer : IDisposable
{
    readonly PeftModel _pm;
    readonly ComputeContext _compute;
    readonly TrainerOptions _o;
    readonly List<Parameter> _params;
    readonly Dictionary<(int, int), ModelPass> _passes = new();
    readonly ICommunicator _comm;
    float[]? _flatGrads;
    readonly IDeviceStepEngine? _engine;     // steps on a device (CUDA) when the context has one

    /// <summary>A trainer of <paramref name="model"/>'s active adapter (or its fully trainable base).</summary>
    /// <param name="model">The model with its active adapter (or fully trainable base).</param>
    /// <param name="compute">Runs the kernels.</param>
    /// <param name="options">The loop's settings; BatchSize is per rank.</param>
    /// <param name="communicator">The data-parallel group this process trains in (default: a single process). Every
    /// rank must construct its trainer with the same model, options and data.</param>
    public Trainer(PeftModel model, ComputeContext compute, TrainerOptions options, ICommunicator? communicator = null)
    {
        _comm = communicator ?? SingleProcess.Instance;
        options.Validate();
        _pm = model;
        _compute = compute;
        _o = options;
        _params = model.TrainableParameters().ToList();
        if (_params.Count == 0)
            throw new PeftException("nothing to train: add an adapter (PeftModel.AddAdapter) or make the base fully trainable first");
        Optimizer = options.Optimizer == "adamw8bit"
            ? new AdamW8bit(compute) { Beta1 = (float)options.AdamBeta1, Beta2 = (float)options.AdamBeta2, Eps = (float)options.AdamEpsilon, WeightDecay = (float)options.WeightDecay }
            : new AdamW(compute) { Beta1 = (float)options.AdamBeta1, Beta2 = (float)options.AdamBeta2, Eps = (float)options.AdamEpsilon, WeightDecay = (float)options.WeightDecay };
        if (compute.Device is { } device)
        {
            if (_comm.Size > 1) throw new PeftException("data-parallel training over MPI runs on the CPU; the CUDA device trains in one process");
            _engine = device.CreateEngine(model, options, _params, Optimizer);
        }
    }

    /// <summary>Bytes the device engine holds on the device (0 on the CPU).</summary>
    internal long DeviceBytes => _engine?.DeviceBytes ?? 0;

    /// <summary>Device memory in use as the driver reports it (-1 on the CPU or when unknown).</summary>
    internal long DeviceUsedBytes => _engine?.DeviceUsedBytes ?? -1;

    /// <summary>The model being trained.</summary>
    public PeftModel Model => _pm;

    /// <summary>The data-parallel group (a single process unless one was given).</summary>
    public ICommunicator Communicator => _comm;

    /// <summary>Bytes of gradients summed over the ranks per optimizer step (0 for a single process).</summary>
    public long AllReducedBytesPerStep => _comm.Size > 1 ? TrainableParameterCount * sizeof(float) : 0;

    internal Optimizer Optimizer { get; }
    internal IReadOnlyList<Parameter> Parameters => _params;

    /// <summary>Trainable parameter count.</summary>
    public long TrainableParameterCount => _params.Sum(p => p.Count);

    /// <summary>Test hook run before each optimizer step (e.g. to inject a non-finite value).</summary>
    internal Action<int, IReadOnlyList<Parameter>>? BeforeStep { get; set; }

    internal BatchOptions Batching => BatchingOf(_o.BatchSize);

    BatchOptions BatchingOf(int rows) => new()
    {
        BatchSize = rows,
        MaxLength = _o.MaxLength,
        Packing = _o.Packing,
        PadId = _pm.Tokenizer?.EosId ?? 0,
        PadToMaxLength = true,
    };

    /// <summary>Batches of the whole group: N ranks × BatchSize sequences, of which each rank trains its slice.</summary>
    BatchOptions GlobalBatching => BatchingOf(_o.BatchSize * _comm.Size);

    /// <summary>This rank's rows of a global batch, at the per-rank shape.</summary>
    Batch LocalSlice(Batch global) => _comm.Size == 1
        ? global.PadTo(_o.BatchSize, Batching.PadId)
        : global.SliceRows(_comm.Rank * _o.BatchSize, _o.BatchSize, Batching.PadId);

    /// <summary>
    /// Tokenizes <paramref name="examples"/> (and <paramref name="eval"/>) with the model's tokenizer and chat template,
    /// then trains for <see cref="TrainerOptions.MaxSteps"/> steps.
    /// </summary>
    public TrainingResult Train(IEnumerable<TrainingExample> examples, IEnumerable<TrainingExample>? eval = null,
        ITrainingObserver? observer = null, CancellationToken cancel = default)
    {
        var tokenizer = _pm.Tokenizer ?? throw new PeftException("this model has no tokenizer: load it with PeftModel.Load, or pass encoded examples");
        var encoder = new ExampleEncoder(tokenizer, _pm.ChatTemplate, new EncodeOptions { TrainOnPrompt = _o.TrainOnPrompt });
        var train = examples.Select(encoder.Encode).ToList();
        if (train.Count == 0) throw new PeftException("no training examples");
        var evalSet = eval?.Select(encoder.Encode).ToList() ?? [];
        return Run(train, evalSet, observer ?? NullObserver.Instance, new TrainingHooks(), cancel).Result;
    }

    ModelPass PassFor(int batch, int seq)
    {
        if (!_passes.TryGetValue((batch, seq), out var p))
            _passes[(batch, seq)] = p = new ModelPass(_pm.Model, _compute, batch, seq, _o.GradientCheckpointing, _pm.Route(_pm.Active));
        return p;
    }

    /// <summary>Bytes by kind as the trainer holds them now, and the process's peak resident set.</summary>
    public MemoryReport Memory()
    {
        var trainable = new HashSet<Tensors.Tensor>(_params.Select(p => p.Value));
        long frozen = _pm.Model.BaseBytes(trainable);   // 4-bit projections at their packed size
        long train = _params.Sum(p => p.Value.ByteLength);
        return new MemoryReport(frozen, train, train, Optimizer.StateBytes, _passes.Values.Sum(p => p.ActivationBytes), ProcessMemory.PeakRssMb());
    }

    /// <summary>Mean loss and perplexity over encoded examples (no dropout), at the training batch shape. With several
    /// ranks, each evaluates every N-th batch and the loss sums and token counts are summed over the ranks.</summary>
    internal EvalMetrics Evaluate(IReadOnlyList<EncodedExample> eval, int step)
    {
        int padId = Batching.PadId;
        if (_comm.Size == 1)
            return Evaluation.LossEvaluator.Evaluate(eval, Batching, (b, t) => PassFor(_o.BatchSize, t), step, b => b.PadTo(_o.BatchSize, padId));
        if (eval.Count == 0) return new EvalMetrics(step, double.NaN, double.NaN, 0);
        var (sum, count) = Evaluation.LossEvaluator.Sum(eval, Batching, (b, t) => PassFor(_o.BatchSize, t), b => b.PadTo(_o.BatchSize, padId),
            shard: i => i % _comm.Size == _comm.Rank);
        Span<double> total = [sum, count];
        _comm.AllReduceSum(total);
        double loss = total[1] > 0 ? total[0] / total[1] : double.NaN;
        return new EvalMetrics(step, loss, Math.Exp(loss), (int)total[1]);
    }

    /// <summary>The loop: steps from hooks.StartStep to MaxSteps, calling the hooks for metrics and checkpoints.</summary>
    internal (TrainingResult Result, EvalMetrics? FirstEval) Run(IReadOnlyList<EncodedExample> train, IReadOnlyList<EncodedExample> eval,
        ITrainingObserver obs, TrainingHooks hooks, CancellationToken cancel)
    {
        var loader = new DataLoader(train, GlobalBatching, _o.Seed);   // positions count global batches
        if (hooks.ResumeAt is { } pos) loader.Seek(pos);
        if (_comm.Size > 1) SynchronizeParameters();
        int startStep = hooks.StartStep;
        var schedule = new LrSchedule(_o.LrScheduler, _o.LearningRate, _o.WarmupSteps, _o.MaxSteps);
        var wall = Stopwatch.StartNew();
        EvalMetrics? firstEval = null, lastEval = null;
        if (startStep == 0 && eval.Count > 0)
        {
            firstEval = Evaluate(eval, 0);
            obs.OnEval(firstEval);
            hooks.Metrics?.Invoke(new JsonObject { ["step"] = 0, ["eval_loss"] = firstEval.Loss, ["eval_ppl"] = firstEval.Perplexity });
        }
        double lastLoss = double.NaN, tokensTotal = 0, secondsTotal = 0;

        for (int step = startStep; step < _o.MaxSteps; step++)
        {
            cancel.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            BeforeStep?.Invoke(step, _params);
            var batches = new List<Batch>();
            int tokens = 0;   // of the whole group: every rank sees the global batch
            for (int i = 0; i < _o.GradientAccumulationSteps; i++)
            {
                var global = loader.Next();
                tokens += global.SegmentIds.Count(s => s != Batch.PaddingSegment);
                batches.Add(LocalSlice(global));
            }
            var (loss, gradNorm, lr) = Step(batches, step, schedule, hooks.LastCheckpoint);
            lastLoss = loss;

            double ms = sw.Elapsed.TotalMilliseconds;
            tokensTotal += tokens;
            secondsTotal += ms / 1000;
            var m = new StepMetrics(step + 1, _o.MaxSteps, loss, lr, gradNorm, tokens / (ms / 1000), ms, ProcessMemory.CurrentRssMb(),
                wall.Elapsed.TotalSeconds, loader.Position.Epoch);
            if ((step + 1) % Math.Max(1, _o.LoggingSteps) == 0 || step + 1 == _o.MaxSteps)
                hooks.Metrics?.Invoke(new JsonObject
                {
                    ["step"] = m.Step, ["loss"] = Math.Round(loss, 6), ["lr"] = lr, ["grad_norm"] = Math.Round(gradNorm, 6),
                    ["tokens_per_s"] = Math.Round(m.TokensPerSecond, 1), ["step_ms"] = Math.Round(ms, 1), ["rss_mb"] = m.RssMb,
                    ["epoch"] = m.Epoch,
                });
            obs.OnStep(m);

            bool last = step + 1 == _o.MaxSteps;
            bool evalDue = _o.EvalSteps > 0 && (step + 1) % _o.EvalSteps == 0;
            if (eval.Count > 0 && (evalDue || last))
            {
                lastEval = Evaluate(eval, step + 1);
                obs.OnEval(lastEval);
                hooks.Metrics?.Invoke(new JsonObject { ["step"] = step + 1, ["eval_loss"] = lastEval.Loss, ["eval_ppl"] = lastEval.Perplexity });
            }
            if (last || evalDue) hooks.Metrics?.Invoke(MemoryLine(step + 1, Memory()));
            hooks.AfterStep?.Invoke(step + 1, loader.Position, last);
        }

        long total = _pm.Model.BaseParameterCount + (_pm.Active == null ? 0 : TrainableParameterCount);
        var result = new TrainingResult(_o.MaxSteps - startStep, lastLoss, firstEval, lastEval, null, wall.Elapsed.TotalSeconds,
            secondsTotal > 0 ? tokensTotal / secondsTotal : 0, Memory(), TrainableParameterCount, total);
        return (result, firstEval);
    }

    /// <summary>
    /// One optimizer step over micro-batches: zero the gradients, forward and backward each (dropout keyed by the
    /// micro-step), refuse a non-finite loss or gradient, clip, update. Returns (mean token loss, gradient norm, lr).
    /// </summary>
    internal (double Loss, double GradNorm, double Lr) Step(IReadOnlyList<Batch> batches, int step, LrSchedule schedule, string? lastCheckpoint = null)
    {
        if (_engine != null) return _engine.Step(batches, step, schedule, lastCheckpoint);
        foreach (var p in _params) p.ZeroGrad();
        int trained = batches.Sum(b => b.Targets.Count(t => t != EncodedExample.IgnoreIndex));
        if (_comm.Size > 1) trained = GlobalCount(trained);   // the loss is the mean over the group's tokens
        double lossSum = 0;
        int counted = 0;
        for (int i = 0; i < batches.Count; i++)
        {
            var b = batches[i];
            var pass = PassFor(b.BatchSize, b.SeqLen);
            pass.Context.DropoutSeed = (ulong)_o.Seed;
            // Each rank's own dropout stream (a single process: the micro-step, as before).
            pass.Context.DropoutStep = (ulong)((step * _o.GradientAccumulationSteps + i) * _comm.Size + _comm.Rank);
            var (s, c) = pass.ForwardBackward(b.InputIds, b.Positions, b.SegmentIds, b.Targets, trained > 0 ? 1f / trained : 0f);
            lossSum += s;
            counted += c;
        }
        if (_comm.Size > 1) (lossSum, counted) = ReduceStep(lossSum, counted);
        double loss = counted > 0 ? lossSum / counted : double.NaN;
        double gradNorm = GradientClipping.GlobalNorm(_params);
        if (!double.IsFinite(loss) || !double.IsFinite(gradNorm))
            throw new PeftException($"step {step + 1}: {(double.IsFinite(loss) ? "gradient norm" : "loss")} is " +
                $"{(double.IsFinite(loss) ? gradNorm : loss)}; training stopped. " +
                (lastCheckpoint != null ? $"The last good checkpoint is {lastCheckpoint} (resume with --resume)." : "No checkpoint was written yet.") +
                " Try a lower learning rate or gradient clipping.");
        GradientClipping.Clip(_params, gradNorm, _o.MaxGradNorm);
        double lr = schedule.At(step);
        Optimizer.BeginStep();
        for (int i = 0; i < _params.Count; i++) Optimizer.Step(i, _params[i].Value.Floats, _params[i].Grad.Floats, (float)lr);
        return (loss, gradNorm, lr);
    }

    /// <summary>Sums the trained-token count over the ranks (exact in a double up to 2^53).</summary>
    int GlobalCount(int local)
    {
        Span<double> v = [local];
        _comm.AllReduceSum(v);
        return (int)v[0];
    }

    /// <summary>Sums the gradients (one flat buffer, one all-reduce), the loss sum and the token count over the ranks.</summary>
    (double LossSum, int Counted) ReduceStep(double lossSum, int counted)
    {
        var flat = _flatGrads ??= new float[TrainableParameterCount];
        int at = 0;
        foreach (var p in _params) { p.Grad.Floats.CopyTo(flat.AsSpan(at)); at += (int)p.Count; }
        _comm.AllReduceSum(flat);
        at = 0;
        foreach (var p in _params) { flat.AsSpan(at, (int)p.Count).CopyTo(p.Grad.Floats); at += (int)p.Count; }
        Span<double> loss = [lossSum, counted];
        _comm.AllReduceSum(loss);
        return (loss[0], (int)loss[1]);
    }

    /// <summary>Copies rank 0's trainable parameters to every rank, so the ranks start (and stay) identical whatever each
    /// loaded or initialized.</summary>
    void SynchronizeParameters()
    {
        foreach (var p in _params) _comm.Broadcast(p.Value.Floats);
    }

    /// <summary>A metrics line with the memory accounting (MiB by kind and the peak resident set).</summary>
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

    /// <summary>Frees the passes' buffers (the model belongs to the caller).</summary>
    public void Dispose()
    {
        foreach (var p in _passes.Values) p.Dispose();
        _passes.Clear();
        _engine?.Dispose();
    }
}

/// <summary>What a folder-based run adds to the loop: where it resumes, where metrics go, what happens after a step.</summary>
internal sealed class TrainingHooks
{
    public int StartStep { get; init; }
    public DataLoaderPosition? ResumeAt { get; init; }
    public Action<JsonObject>? Metrics { get; init; }
    /// <summary>(steps done, data position, last step?) after each optimizer step: checkpoints.</summary>
    public Action<int, DataLoaderPosition, bool>? AfterStep { get; init; }
    /// <summary>Named in the error when a step goes non-finite.</summary>
    public string? LastCheckpoint { get; set; }
}
