using PeftSharp.Tensors;

namespace PeftSharp.Nn;

/// <summary>
/// A trainable float32 tensor and its gradient (same shape). Name is the HF/PEFT tensor name. The gradient is
/// allocated on first use, so a parameter that is never trained (an adapter loaded for serving) costs only its value.
/// </summary>
internal sealed class Parameter : IDisposable
{
    Tensor? _grad;

    public string Name { get; }
    public Tensor Value { get; }

    /// <summary>The gradient (zeros when first used).</summary>
    public Tensor Grad => _grad ?? CreateGrad();

    /// <summary>True once the gradient exists (something trained or read it).</summary>
    public bool HasGrad => _grad != null;

    public Parameter(string name, Tensor value)
    {
        if (value.DType != DType.F32) throw new ArgumentException($"parameter {name} must be F32, is {value.DType}");
        Name = name;
        Value = value;
    }

    Tensor CreateGrad()
    {
        var made = new Tensor(DType.F32, Value.Shape);
        var won = Interlocked.CompareExchange(ref _grad, made, null);
        if (won == null) return made;
        made.Dispose();   // another thread created it first
        return won;
    }

    public Parameter(string name, params int[] shape) : this(name, new Tensor(DType.F32, shape)) { }

    public long Count => Value.ElementCount;
    public void ZeroGrad() => _grad?.Floats.Clear();

    public void Dispose()
    {
        Value.Dispose();
        _grad?.Dispose();
    }
}
