using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>An RMSNorm weight (float32; tiny), trainable only in full fine-tuning.</summary>
internal sealed unsafe class Norm : IDisposable
{
    public Parameter Weight { get; }
    public bool Trainable { get; set; }

    public Norm(string name, Tensor source)
    {
        if (source.Rank != 1) throw new PeftException($"{name}: expected a 1-D norm weight, got {source.ShapeString}");
        var f = new Tensor(DType.F32, source.Shape);
        DTypeConvert.ToFloat(source.Data, source.DType, f.Floats);
        Weight = new Parameter(name, f);
    }

    public int Size => Weight.Value.Shape[0];
    public ReadOnlySpan<float> Values => Weight.Value.Floats;
    /// <summary>Gradient span, or empty when frozen (kernels skip it).</summary>
    public Span<float> GradOrEmpty => Trainable ? Weight.Grad.Floats : Span<float>.Empty;
    public void Dispose() => Weight.Dispose();
}
