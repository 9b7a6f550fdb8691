namespace PeftSharp.Nn;

/// <summary>
/// y = x·Wᵀ (+ b) over n rows: the seam where adapters wrap a base projection (LoRA/DoRA wrap any ILinear,
/// dense or 4-bit, MLX-LM style). Activations are float32 row-major: x (n, In), y (n, Out).
/// </summary>
public unsafe interface ILinear
{
    /// <summary>Full HF module name, e.g. model.layers.3.self_attn.q_proj.</summary>
    string Name { get; }
    int InFeatures { get; }
    int OutFeatures { get; }

    /// <summary>y (n,Out) = x (n,In)·Wᵀ + b, overwriting y. <paramref name="training"/> enables dropout-like behaviour.</summary>
    void Forward(float* x, float* y, int n, bool training);

    /// <summary>dx (n,In) += dy·W (skipped when dx is null); parameter gradients +=. x is the input Forward saw.</summary>
    void Backward(float* dy, float* x, float* dx, int n);

    /// <summary>Trainable parameters (empty for a frozen layer).</summary>
    IEnumerable<Parameter> Parameters();
}
