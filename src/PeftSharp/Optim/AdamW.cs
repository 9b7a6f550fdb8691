using PeftSharp.Tensors;

namespace PeftSharp.Optim;

/// <summary>Which AdamW arithmetic to reproduce.</summary>
internal enum AdamWFlavor
{
    /// <summary>torch.optim.AdamW: p *= 1 − lr·wd before the update; p −= lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε).</summary>
    Torch,
    /// <summary>bitsandbytes' 32-bit kernel: p += −lr·√(1−β2^t)/(1−β1^t) · m / (√v + ε·√(1−β2^t)); then p *= 1 − lr·wd
    /// (decay after the update). Used by AdamW8bit for tensors under its 8-bit threshold.</summary>
    Bitsandbytes,
}

/// <summary>AdamW with float32 states (exp_avg m, exp_avg_sq v).</summary>
internal sealed class AdamW : Optimizer
{
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.999f;
    public float Eps { get; init; } = 1e-8f;
    public float WeightDecay { get; init; } = 0.01f;
    public AdamWFlavor Flavor { get; init; } = AdamWFlavor.Torch;

    readonly Dictionary<int, (float[] m, float[] v)> _state = [];

    /// <summary>AdamW running its updates on <paramref name="context"/>.</summary>
    public AdamW(Compute.ComputeContext context) : base(context) { }

    public override void Step(int paramIndex, Span<float> value, ReadOnlySpan<float> grad, float lr)
    {
        CheckStep(paramIndex, value.Length, grad.Length);
        if (!_state.TryGetValue(paramIndex, out var s))
            _state[paramIndex] = s = (new float[value.Length], new float[value.Length]);
        else if (s.m.Length != value.Length)
            throw new PeftException($"optimizer parameter {paramIndex}: has {value.Length} elements, its state has {s.m.Length}");
        if (Flavor == AdamWFlavor.Torch) TorchUpdate(value, grad, s.m, s.v, lr, StepCount);
        else Adam32Kernel.Update(value, grad, s.m, s.v, lr, Beta1, Beta2, Eps, WeightDecay, StepCount);
    }

    // p (n), g (n), m (n), v (n): torch's single-tensor AdamW, scalars in float64 then applied as float32
    void TorchUpdate(Span<float> p, ReadOnlySpan<float> g, float[] m, float[] v, float lr, int t)
    {
        float decay = (float)(1.0 - (double)lr * WeightDecay);
        float w1 = (float)(1.0 - Beta1);
        float w2 = (float)(1.0 - Beta2);
        double bc1 = 1.0 - Math.Pow(Beta1, t);
        double bc2 = 1.0 - Math.Pow(Beta2, t);
        float stepSize = (float)(lr / bc1);
        float bc2Sqrt = (float)Math.Sqrt(bc2);
        float b2 = Beta2, eps = Eps;
        for (int i = 0; i < p.Length; i++)
        {
            float gi = g[i];
            p[i] *= decay;
            m[i] += w1 * (gi - m[i]);                     // lerp(m, g, 1 − β1)
            v[i] = v[i] * b2 + w2 * gi * gi;              // mul_(β2).addcmul_(g, g, 1 − β2)
            float denom = MathF.Sqrt(v[i]) / bc2Sqrt + eps;
            p[i] += -stepSize * (m[i] / denom);
        }
    }

    /// <summary>The float32 states of parameter i (m, v), or null before its first step.</summary>
    public override long StateBytes => _state.Values.Sum(s => 4L * (s.m.Length + s.v.Length));

    /// <summary>Replaces the state with one computed elsewhere (a device): the step count and (m, v) per parameter index.</summary>
    internal void Restore(int stepCount, IReadOnlyList<(float[] m, float[] v)> state)
    {
        _state.Clear();
        for (int i = 0; i < state.Count; i++) _state[i] = state[i];
        StepCount = stepCount;
    }

    public (float[] m, float[] v)? State(int paramIndex) => _state.TryGetValue(paramIndex, out var s) ? s : null;

    public override Dictionary<string, Tensor> SaveState()
    {
        var d = new Dictionary<string, Tensor> { ["step"] = StepTensor(StepCount) };
        foreach (var (i, (m, v)) in _state)
        {
            d[$"{i}.exp_avg"] = FloatTensor(m);
            d[$"{i}.exp_avg_sq"] = FloatTensor(v);
        }
        return d;
    }

    public override void LoadState(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        int step = ReadStep(state, source);
        var loaded = new Dictionary<int, (float[], float[])>();
        foreach (int i in ParamIndices(state, source))
        {
            var m = Get(state, $"{i}.exp_avg", DType.F32, source).Floats.ToArray();
            var v = Get(state, $"{i}.exp_avg_sq", DType.F32, source).Floats.ToArray();
            if (m.Length != v.Length) throw new PeftException($"{source}: optimizer state of parameter {i} has mismatched lengths");
            loaded[i] = (m, v);
        }
        _state.Clear();
        foreach (var kv in loaded) _state[kv.Key] = kv.Value;
        StepCount = step;
    }
}

/// <summary>bitsandbytes' 32-bit Adam kernel (kOptimizer32bit2State), float32 throughout, decoupled decay after the update.</summary>
internal static class Adam32Kernel
{
    // p (n), g (n), m (n), v (n)
    public static void Update(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v,
        float lr, float beta1, float beta2, float eps, float weightDecay, int step)
    {
        float correction1 = 1f - MathF.Pow(beta1, step);
        float correction2 = MathF.Sqrt(1f - MathF.Pow(beta2, step));
        float stepSize = -lr * correction2 / correction1;
        float w1 = 1f - beta1, w2 = 1f - beta2;
        float decay = 1f - lr * weightDecay;
        for (int i = 0; i < p.Length; i++)
        {
            float gi = g[i];
            m[i] = m[i] * beta1 + w1 * gi;
            v[i] = v[i] * beta2 + w2 * (gi * gi);
            p[i] = p[i] + stepSize * (m[i] / (MathF.Sqrt(v[i]) + eps * correction2));
            if (weightDecay > 0f) p[i] *= decay;
        }
    }
}
