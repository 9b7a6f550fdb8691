using PeftSharp.Compute;
using PeftSharp.Cuda.Kernels;
using PeftSharp.Data;
using PeftSharp.Nn;
using PeftSharp.Optim;
using PeftSharp.Peft;
using PeftSharp.Training;

namespace PeftSharp.Cuda;

/// <summary>
/// The trainer's step on the device, with the CPU trainer's semantics: zero the adapter gradients, forward and backward
/// each micro-batch with gradScale = 1 / trained tokens, refuse a non-finite loss or gradient norm, clip to the global
/// norm (torch's clip_grad_norm_), AdamW (torch's arithmetic) on the device; then the trained values (and, unless a
/// benchmark turned it off, the optimizer state) are copied into the host parameters and optimizer.
/// </summary>
internal sealed class CudaStepEngine : IDeviceStepEngine
{
    const int NormChunk = 4096;

    readonly GpuDevice _dev;
    readonly DeviceModel _model;
    readonly TrainerOptions _o;
    readonly AdamW _hostOptimizer;
    readonly DeviceParameter[] _params;           // in the trainer's order
    readonly Dictionary<(int, int), DevicePass> _passes = new();
    readonly RopeTableSource _rope;
    readonly DeviceArray<double> _partials;
    readonly int[] _partOffsets;
    int _stepCount;
    bool _stateChecked;

    public CudaStepEngine(GpuDevice device, PeftModel pm, TrainerOptions options, IReadOnlyList<Parameter> hostParams, Optimizer hostOptimizer)
    {
        DeviceModel.CheckSupported(pm, hostParams, options.Optimizer);
        if (options.GradientCheckpointing)
            throw new PeftException("the CUDA device path keeps every block's activations (no gradient checkpointing yet); drop --gradient-checkpointing");
        _dev = device;
        _o = options;
        _hostOptimizer = (AdamW)hostOptimizer;
        _model = DeviceModel.Upload(device, pm);
        var byHost = new Dictionary<Parameter, DeviceParameter>(ReferenceEqualityComparer.Instance);
        foreach (var p in _model.Parameters) byHost[p.Host] = p;
        _params = hostParams.Select(p => byHost.TryGetValue(p, out var d) ? d
            : throw new PeftException($"'{p.Name}' has no device copy")).ToArray();
        _rope = new RopeTableSource(pm.Model.Rope);
        _partOffsets = new int[_params.Length + 1];
        for (int i = 0; i < _params.Length; i++) _partOffsets[i + 1] = _partOffsets[i] + Parts(_params[i].Count);
        _partials = device.Allocate<double>(Math.Max(1, _partOffsets[^1]));
    }

    static int Parts(long count) => (int)((count + NormChunk - 1) / NormChunk);

    public long DeviceBytes => _dev.AllocatedBytes;

    public long DeviceUsedBytes
    {
        get
        {
            var (free, total) = _dev.MemoryInfo();
            return free < 0 ? -1 : total - free;
        }
    }

    DevicePass PassFor(int batch, int seq)
    {
        if (!_passes.TryGetValue((batch, seq), out var p))
            _passes[(batch, seq)] = p = new DevicePass(_dev, _model, _rope, batch, seq);
        return p;
    }

    public (double Loss, double GradNorm, double Lr) Step(IReadOnlyList<Batch> batches, int step, LrSchedule schedule, string? lastCheckpoint)
    {
        LoadHostStateOnce();
        foreach (var p in _params) p.Grad.Zero();
        int trained = batches.Sum(b => b.Targets.Count(t => t != EncodedExample.IgnoreIndex));
        double lossSum = 0;
        int counted = 0;
        foreach (var b in batches)
        {
            var (s, c) = PassFor(b.BatchSize, b.SeqLen).ForwardBackward(b.InputIds, b.Positions, b.SegmentIds, b.Targets, trained > 0 ? 1f / trained : 0f);
            lossSum += s;
            counted += c;
        }
        double loss = counted > 0 ? lossSum / counted : double.NaN;
        double gradNorm = GlobalNorm();
        if (!double.IsFinite(loss) || !double.IsFinite(gradNorm))
            throw new PeftException($"step {step + 1}: {(double.IsFinite(loss) ? "gradient norm" : "loss")} is " +
                $"{(double.IsFinite(loss) ? gradNorm : loss)}; training stopped. " +
                (lastCheckpoint != null ? $"The last good checkpoint is {lastCheckpoint} (resume with --resume)." : "No checkpoint was written yet.") +
                " Try a lower learning rate or gradient clipping.");
        if (_o.MaxGradNorm > 0 && gradNorm > _o.MaxGradNorm)
        {
            float scale = (float)(_o.MaxGradNorm / (gradNorm + 1e-6));
            foreach (var p in _params) _dev.Kernels.Scale(p.Grad.View, scale, p.Count);
        }
        double lr = schedule.At(step);
        _stepCount++;
        var s32 = new AdamScalars((float)lr, (float)_o.AdamBeta1, (float)_o.AdamBeta2, (float)_o.AdamEpsilon, (float)_o.WeightDecay, _stepCount);
        foreach (var p in _params) _dev.Kernels.AdamW(p.Value.View, p.Grad.View, p.M.View, p.V.View, p.Count, s32);
        CopyBack();
        return (loss, gradNorm, lr);
    }

    /// <summary>‖g‖₂ over the adapter gradients: float64 partial sums per chunk on the device, summed here in order.</summary>
    double GlobalNorm()
    {
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            int parts = _partOffsets[i + 1] - _partOffsets[i];
            _dev.Kernels.SumSquares(p.Grad.View, _partials.Slice(_partOffsets[i], parts), parts, NormChunk, (int)p.Count);
        }
        double sum = 0;
        foreach (var v in _partials.ToArray()) sum += v;
        return Math.Sqrt(sum);
    }

    /// <summary>A resumed run's optimizer state (loaded into the host optimizer after the trainer was made) goes up once.</summary>
    void LoadHostStateOnce()
    {
        if (_stateChecked) return;
        _stateChecked = true;
        if (_hostOptimizer.StepCount == 0) return;
        _stepCount = _hostOptimizer.StepCount;
        for (int i = 0; i < _params.Length; i++)
        {
            if (_hostOptimizer.State(i) is not { } st) continue;
            _params[i].M.Upload(st.m);
            _params[i].V.Upload(st.v);
        }
        foreach (var p in _params) p.Value.Upload(p.Host.Value.Floats);
    }

    void CopyBack()
    {
        foreach (var p in _params) p.Value.Download(p.Host.Value.Floats);
        if (!_o.DeviceSyncsOptimizerState) return;
        var state = _params.Select(p => (p.M.ToArray(), p.V.ToArray())).ToList();
        _hostOptimizer.Restore(_stepCount, state);
    }

    /// <summary>The device gradients of each trainable parameter (tests compare them with the CPU's).</summary>
    internal float[] Gradient(int index) => _params[index].Grad.ToArray();

    public void Dispose()
    {
        foreach (var p in _passes.Values) p.Dispose();
        _passes.Clear();
        _partials.Dispose();
        _model.Dispose();
    }
}
