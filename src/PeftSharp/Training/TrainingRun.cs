using System.Text.Json;
using System.Text.Json.Nodes;
using PeftSharp.Compute;
using PeftSharp.Data;
using PeftSharp.Distributed;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Tensors;
using PeftSharp.Tokenization;

namespace PeftSharp.Training;

/// <summary>
/// A training run over folders and files, as <c>peft train</c> does it: loads the model and the data files, trains with
/// a <see cref="Trainer"/>, and writes atomic checkpoints (a resumed run continues bit-identically), metrics.jsonl,
/// summary.json and the result (a PEFT adapter, or a full checkpoint for full fine-tuning) under the output folder.
/// Data-parallel (a communicator of N ranks, e.g. under <c>mpirun</c>): every rank loads the model and data (a shared
/// file system), trains its slice of each global batch, and rank 0 alone writes checkpoints, metrics and the result and
/// reports progress. A checkpoint records the global batch, so a run resumes with any number of ranks whose
/// ranks × per-device batch is the same.
/// </summary>
public sealed class TrainingRun : IDisposable
{
    readonly TrainingOptions _o;
    readonly ITrainingObserver _obs;
    readonly ComputeContext _compute;
    readonly PeftModel _pm;
    readonly Trainer _trainer;
    readonly ICommunicator _comm;
    readonly List<LoftQModuleReport>? _loftq;   // LoftQ runs: what the init measured per module

    /// <summary>Loads the model and data that <paramref name="options"/> name; <paramref name="compute"/> runs everything.</summary>
    /// <param name="options">The model, data, method and loop settings.</param>
    /// <param name="compute">Runs everything.</param>
    /// <param name="observer">Hears progress (rank 0's only).</param>
    /// <param name="communicator">The data-parallel group (default: a single process); only rank 0's observer hears anything.</param>
    public TrainingRun(TrainingOptions options, ComputeContext compute, ITrainingObserver? observer = null, ICommunicator? communicator = null)
    {
        options.Validate();
        _o = options;
        _comm = communicator ?? SingleProcess.Instance;
        _obs = _comm.Rank == 0 ? observer ?? NullObserver.Instance : NullObserver.Instance;
        _compute = compute;
        var method = options.ParsedMethod;
        bool loftq = !method.IsFull && LoftQ.IsLoftQ(options.Lora.InitLoraWeights);
        // LoftQ quantizes the base itself (the NF4 of W − s·B·A replaces the NF4 of W): it loads the dense weights.
        _pm = PeftModel.Load(options.ModelDir, compute, method.QuantizedBase && !loftq ? options.Quantize : null);
        try
        {
            Data = TrainingData.Prepare(options.DataFile, _pm.Tokenizer!, _pm.ChatTemplate, new DataOptions
            {
                Format = DatasetFormats.Parse(options.DataFormat),
                SkipBadLines = options.SkipBadLines,
                TrainOnPrompt = options.TrainOnPrompt,
                EvalFraction = options.EvalFile != null ? 0 : options.EvalFraction,
                EvalFile = options.EvalFile,
                Seed = options.Seed,
            });
            if (method.IsFull) _pm.Model.MakeFullyTrainable();
            else if (loftq)
            {
                _loftq = [];
                _pm.AddAdapter("default", options.Lora with { UseDora = method.Adapter == AdapterKind.Dora }, (ulong)options.Seed,
                    method.QuantizedBase ? options.Quantize : null, _loftq, _obs.OnMessage);
                if (method.QuantizedBase) _pm.Model.QuantizeDenseProjections(compute, options.Quantize);
                _obs.OnMessage(LoftQRunFiles.Summary(_loftq));
            }
            else _pm.AddAdapter("default", options.Lora with { UseDora = method.Adapter == AdapterKind.Dora }, (ulong)options.Seed, null, [], _obs.OnMessage);
            if (_pm.Model.Quantization != null) _obs.OnMessage($"base model: {_pm.Model.Quantization}");
            if (_pm.Model.GroupQuantization != null) _obs.OnMessage($"base model: {_pm.Model.GroupQuantization}");
            if (_pm.Model.Tied && options.Lora.ModulesToSave is { Count: > 0 } mts && !options.Lora.EnsureWeightTying && !method.IsFull)
                // PEFT's warning for the same setup (tuners_utils._check_tied_modules), with what it means here.
                _obs.OnMessage($"note: the model ties embed_tokens and lm_head, and modules_to_save ({string.Join(", ", mts)}) replaces only the " +
                               "named module: the tie is broken, as in PEFT; ensure_weight_tying: true keeps one shared copy");
            _trainer = new Trainer(_pm, compute, options, _comm);
        }
        catch
        {
            _pm.Dispose();
            throw;
        }
    }

    /// <summary>The model being trained.</summary>
    public PeftModel Model => _pm;
    internal HfTokenizer Tokenizer => _pm.Tokenizer!;
    internal PreparedData Data { get; }

    /// <summary>The data-parallel group this run trains in.</summary>
    public ICommunicator Communicator => _comm;
    bool Writes => _comm.Rank == 0;

    /// <summary>Test hook run before each optimizer step (e.g. to inject a non-finite value).</summary>
    internal Action<int, IReadOnlyList<Nn.Parameter>>? BeforeStep { get => _trainer.BeforeStep; set => _trainer.BeforeStep = value; }

    string CheckpointsDir => Path.Combine(_o.OutputDir, "checkpoints");
    string MetricsPath => Path.Combine(_o.OutputDir, "metrics.jsonl");

    /// <summary>Bytes by kind as the run holds them now.</summary>
    public MemoryReport Memory() => _trainer.Memory();

    /// <summary>Mean loss and perplexity over the eval set (no dropout).</summary>
    internal EvalMetrics Evaluate(int step) => _trainer.Evaluate(Data.Eval, step);

    /// <summary>Trains to max_steps (resuming when asked), then writes the result and summary.json.</summary>
    public TrainingResult Run(CancellationToken cancel = default)
    {
        if (Writes) Directory.CreateDirectory(_o.OutputDir);
        int globalBatch = _o.BatchSize * _comm.Size;
        int startStep = 0;
        string? resumed = null;
        DataLoaderPosition? resumeAt = null;
        var tap = new LastLossObserver(_obs);
        if (_o.ResumeFrom != null)
        {
            resumed = _o.ResumeFrom == "latest"
                ? Checkpoint.List(CheckpointsDir).LastOrDefault() ?? throw new PeftException($"--resume: no checkpoint under {CheckpointsDir}")
                : _o.ResumeFrom;
            var state = Checkpoint.Load(resumed, _trainer.Parameters, _trainer.Optimizer);
            if (state.Method != _o.Method) throw new PeftException($"{resumed}: checkpoint of method {state.Method}, this run is {_o.Method}");
            if (state.Threads != _compute.Threads)
                _obs.OnMessage($"note: checkpoint was written with --threads {state.Threads}, resuming with {_compute.Threads}; the loss curve may differ in the last digits");
            if ((state.Ranks > 1 || _comm.Size > 1) && state.GlobalBatchSize > 0 && state.GlobalBatchSize != globalBatch)
                throw new PeftException($"{resumed}: the checkpoint was trained with a global batch of {state.GlobalBatchSize} sequences " +
                    $"({state.Ranks} rank(s) × {state.GlobalBatchSize / Math.Max(1, state.Ranks)}); this run has {_comm.Size} × {_o.BatchSize} = {globalBatch}. " +
                    $"To continue the same run, set per_device_train_batch_size so that ranks × it = {state.GlobalBatchSize}");
            if (state.Ranks != _comm.Size)
                _obs.OnMessage($"note: checkpoint was written by {state.Ranks} rank(s), resuming with {_comm.Size} (same global batch of {globalBatch})");
            startStep = state.Step;
            tap.LastLoss = state.Loss ?? double.NaN;
            resumeAt = new DataLoaderPosition(state.Epoch, state.Batch);
            if (Writes) TruncateMetrics(startStep);
        }
        else if (Writes && File.Exists(MetricsPath)) File.Delete(MetricsPath);
        if (_comm.Size > 1) _obs.OnMessage($"data parallel: {_comm.Name}, global batch {_comm.Size} × {_o.BatchSize} = {globalBatch}, " +
            $"{_trainer.AllReducedBytesPerStep / 1048576.0:F1} MiB of gradients all-reduced per step");

        if (_loftq != null && Writes) LoftQRunFiles.Write(_o.OutputDir, _pm, _o.ModelDir, _loftq, writeInitialAdapter: startStep == 0, _obs);

        long trainable = _trainer.TrainableParameterCount;
        long total = _pm.Model.BaseParameterCount + (_o.ParsedMethod.IsFull ? 0 : trainable);
        _obs.OnStart(new TrainingPlan(_o.Method, trainable, total, Data.Train.Count, Data.Eval.Count, Data.SkippedCount,
            DatasetFormats.Name(Data.Format), startStep, _o.MaxSteps, resumed, Memory()));

        TrainingHooks hooks = null!;
        (int Step, DataLoaderPosition Position)? done = null;
        string Save(int step, DataLoaderPosition pos) =>
            hooks.LastCheckpoint = Checkpoint.Save(CheckpointsDir, new Checkpoint.State(step, pos.Epoch, pos.Batch, _o.Method, _o.Seed, _compute.Threads, tap.LastLoss, _comm.Size, globalBatch),
                _trainer.Parameters, _trainer.Optimizer, WriteResult, _o.SaveTotalLimit);
        hooks = new TrainingHooks
        {
            StartStep = startStep,
            ResumeAt = resumeAt,
            Metrics = Writes ? AppendMetrics : null,
            LastCheckpoint = Checkpoint.List(CheckpointsDir).LastOrDefault(),
            AfterStep = !Writes ? null : (step, pos, last) =>
            {
                done = (step, pos);
                if ((_o.SaveSteps > 0 && step % _o.SaveSteps == 0) || last) Save(step, pos);
            },
        };
        TrainingResult loop;
        try { (loop, _) = _trainer.Run(Data.Train, Data.Eval, tap, hooks, cancel); }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // Stopped between steps: checkpoint the steps done since the last save, so --resume loses nothing.
            if (done is var (step, pos) && !(hooks.LastCheckpoint?.EndsWith($"step-{step:D6}", StringComparison.Ordinal) ?? false))
                Save(step, pos);
            throw new TrainingInterruptedException(done?.Step ?? startStep, hooks.LastCheckpoint);
        }
        if (double.IsNaN(loop.FinalLoss)) loop = loop with { FinalLoss = tap.LastLoss };   // resumed after its last step

        string resultDir = Path.Combine(_o.OutputDir, _o.ParsedMethod.IsFull ? "model" : "adapter");
        var result = loop with { AdapterDir = resultDir };
        if (!Writes) return result;
        WriteResult(resultDir);
        TrainingSummary.Write(_o.OutputDir, result);   // snake_case keys; readers accept the older PascalCase too
        return result;
    }

    /// <summary>The usable result: the PEFT adapter (LoRA/DoRA), or a full HF checkpoint (full fine-tuning).</summary>
    void WriteResult(string dir)
    {
        Directory.CreateDirectory(dir);
        if (_o.ParsedMethod.IsFull)
        {
            HfCheckpoint.Write(dir, _pm.Model, _o.ModelDir, DType.F32);
            return;
        }
        // A LoftQ adapter applies to LoftQ's base, not to the original model.
        string baseDir = _loftq != null ? LoftQRunFiles.BaseDir(_o.OutputDir) : _o.ModelDir;
        _pm.Save(dir, "default", _o.SaveBf16 ? DType.BF16 : DType.F32, Path.GetFullPath(baseDir));
        if (_loftq != null) LoftQRunFiles.WriteReport(dir, _loftq, _pm.Configs["default"].LoftqConfig!);
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

    /// <summary>Frees the trainer and the model.</summary>
    public void Dispose()
    {
        _trainer.Dispose();
        _pm.Dispose();
    }
}
