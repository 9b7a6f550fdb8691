using PeftSharp.Compute;
using PeftSharp.Tensors;

namespace PeftSharp.Optim;

/// <summary>
/// An optimizer over float32 parameters identified by a stable index (the trainer's parameter order). Per-parameter
/// state is created on the first <see cref="Step"/> for that index. Usage per training step:
/// <c>opt.BeginStep(); for each i: opt.Step(i, value_i, grad_i, lr);</c>
/// </summary>
internal abstract class Optimizer
{
    /// <summary>An optimizer whose kernels run on <paramref name="context"/>.</summary>
    protected Optimizer(ComputeContext context) => Context = context;

    /// <summary>Where the update kernels run.</summary>
    protected ComputeContext Context { get; }

    /// <summary>Number of optimizer steps begun (the t of bias correction; 1 during the first step).</summary>
    public int StepCount { get; protected set; }

    /// <summary>Starts an optimizer step: increments <see cref="StepCount"/>.</summary>
    public void BeginStep() => StepCount++;

    /// <summary>Updates parameter <paramref name="paramIndex"/> in place from its gradient, at learning rate lr.</summary>
    public abstract void Step(int paramIndex, Span<float> value, ReadOnlySpan<float> grad, float lr);

    /// <summary>Bytes of state the optimizer holds now (measured without copying it).</summary>
    public abstract long StateBytes { get; }

    /// <summary>The state as named tensors ("step" plus "{index}.{name}" per parameter), for checkpoints. The caller
    /// disposes them.</summary>
    public abstract Dictionary<string, Tensor> SaveState();

    /// <summary>Restores a state written by <see cref="SaveState"/>; <paramref name="source"/> is named in errors.</summary>
    public abstract void LoadState(IReadOnlyDictionary<string, Tensor> state, string source);

    protected void CheckStep(int paramIndex, int valueLength, int gradLength)
    {
        if (StepCount <= 0) throw new InvalidOperationException("call BeginStep() before Step()");
        if (paramIndex < 0) throw new ArgumentOutOfRangeException(nameof(paramIndex));
        if (valueLength != gradLength)
            throw new PeftException($"optimizer parameter {paramIndex}: gradient has {gradLength} elements, parameter has {valueLength}");
    }

    protected static Tensor StepTensor(int step)
    {
        var t = new Tensor(DType.I64, 1);
        t.Span<long>()[0] = step;
        return t;
    }

    protected static int ReadStep(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        if (!state.TryGetValue("step", out var t) || t.DType != DType.I64 || t.ElementCount != 1)
            throw new PeftException($"{source}: optimizer state has no I64 'step' entry");
        long s = t.Span<long>()[0];
        if (s < 0 || s > int.MaxValue) throw new PeftException($"{source}: optimizer 'step' {s} is out of range");
        return (int)s;
    }

    protected static Tensor FloatTensor(ReadOnlySpan<float> v)
    {
        var t = new Tensor(DType.F32, v.Length);
        v.CopyTo(t.Floats);
        return t;
    }

    protected static Tensor ByteTensor(ReadOnlySpan<byte> v)
    {
        var t = new Tensor(DType.U8, v.Length);
        v.CopyTo(t.Span<byte>());
        return t;
    }

    /// <summary>Parameter indices present in a saved state (keys "{index}.{name}").</summary>
    protected static SortedSet<int> ParamIndices(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        var set = new SortedSet<int>();
        foreach (var k in state.Keys)
        {
            if (k == "step") continue;
            int dot = k.IndexOf('.');
            if (dot <= 0 || !int.TryParse(k.AsSpan(0, dot), out int i) || i < 0)
                throw new PeftException($"{source}: unexpected optimizer state key '{k}' (expected 'step' or '<index>.<name>')");
            set.Add(i);
        }
        return set;
    }

    protected static Tensor Get(IReadOnlyDictionary<string, Tensor> state, string key, DType dtype, string source)
    {
        if (!state.TryGetValue(key, out var t)) throw new PeftException($"{source}: optimizer state is missing '{key}'");
        if (t.DType != dtype) throw new PeftException($"{source}: optimizer state '{key}' is {t.DType}, expected {dtype}");
        return t;
    }
}
