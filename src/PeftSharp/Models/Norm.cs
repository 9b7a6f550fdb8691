using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>An RMSNorm weight (float32; tiny), trainable only in full fine-tuning. The weight is the checkpoint's
/// tensor as stored; <see cref="Offset"/> is what the norm adds to it (Gemma's (1 + w): 1), so saving, the optimizer
/// and weight decay all see the same w as transformers.</summary>
internal sealed unsafe class Norm : IDisposable
{
    public Parameter Weight { get; }
    public bool Trainable { get; set; }
    /// <summary>0 for Llama's x·w, 1 for Gemma's x·(1 + w).</summary>
    public float Offset { get; }

    public Norm(string name, Tensor source, float offset = 0)
    {
        if (source.Rank != 1) throw new PeftException($"{name}: expected a 1-D norm weight, got {source.ShapeString}");
        var f = new Tensor(DType.F32, source.Shape);
        DTypeConvert.ToFloat(source.Data, source.DType, f.Floats);
        Weight = new Parameter(name, f);
        Offset = offset;
    }

    public int Size => Weight.Value.Shape[0];
    public ReadOnlySpan<float> Values => Weight.Value.Floats;
    /// <summary>Gradient span, or empty when frozen (kernels skip it).</summary>
    public Span<float> GradOrEmpty => Trainable ? Weight.Grad.Floats : Span<float>.Empty;
    public void Dispose() => Weight.Dispose();
}
