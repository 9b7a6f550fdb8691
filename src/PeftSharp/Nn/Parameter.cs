using PeftSharp.Tensors;

namespace PeftSharp.Nn;

/// <summary>A trainable float32 tensor and its gradient (same shape). Name is the HF/PEFT tensor name.</summary>
internal sealed class Parameter : IDisposable
{
    public string Name { get; }
    public Tensor Value { get; }
    public Tensor Grad { get; }

    public Parameter(string name, Tensor value)
    {
        if (value.DType != DType.F32) throw new ArgumentException($"parameter {name} must be F32, is {value.DType}");
        Name = name;
        Value = value;
        Grad = new Tensor(DType.F32, value.Shape);
    }

    public Parameter(string name, params int[] shape) : this(name, new Tensor(DType.F32, shape)) { }

    public long Count => Value.ElementCount;
    public void ZeroGrad() => Grad.Floats.Clear();

    public void Dispose()
    {
        Value.Dispose();
        Grad.Dispose();
    }
}
