using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using PeftSharp.Compute;
using PeftSharp.Kernels;
using PeftSharp.Tensors;

namespace PeftSharp.Nn;

/// <summary>
/// A dense projection. Frozen: the weight stays in its storage dtype (F32/BF16/F16), widened inside the GEMM.
/// Trainable (full fine-tuning): weight and bias are float32 <see cref="Parameter"/>s with gradients.
/// </summary>
internal sealed unsafe class Linear : IFrozenProjection, IDisposable
{
    Tensor _weight;          // (Out, In)
    Tensor? _bias;           // (Out), F32
    Parameter? _weightParam, _biasParam;

    public string Name { get; }
    public int InFeatures { get; }
    public int OutFeatures { get; }
    public bool Trainable => _weightParam != null;
    public Tensor Weight => _weight;
    public Tensor? Bias => _bias;

    public Linear(string name, Tensor weight, Tensor? bias)
    {
        if (weight.Rank != 2) throw new PeftException($"{name}.weight: expected 2-D [out, in], got {weight.ShapeString}");
        Name = name;
        _weight = weight;
        OutFeatures = weight.Shape[0];
        InFeatures = weight.Shape[1];
        if (bias != null)
        {
            if (bias.Rank != 1 || bias.Shape[0] != OutFeatures)
                throw new PeftException($"{name}.bias: expected [{OutFeatures}], got {bias.ShapeString}");
            _bias = bias.DType == DType.F32 ? bias : bias.ToF32();
        }
    }

    /// <summary>Full fine-tuning: copies the weight (and bias) to float32 parameters that receive gradients.</summary>
    public void MakeTrainable()
    {
        if (Trainable) return;
        _weightParam = new Parameter(Name + ".weight", _weight.DType == DType.F32 ? CopyF32(_weight) : _weight.ToF32());
        _weight = _weightParam.Value;
        if (_bias != null) EnsureBiasParameter();
    }

    bool _biasTrainable;

    /// <summary>
    /// PEFT's bias="all"/"lora_only": the bias alone becomes a float32 parameter (an owned copy) with a gradient
    /// (Σ over rows of dy); the weight stays frozen. Returns null for a layer without bias.
    /// </summary>
    public Parameter? MakeBiasTrainable()
    {
        if (_bias == null) return null;
        EnsureBiasParameter();
        _biasTrainable = true;
        return _biasParam;
    }

    /// <summary>Whether the bias receives gradients and is listed in <see cref="Parameters"/>.</summary>
    public bool BiasTrainable
    {
        get => _biasParam != null && (Trainable || _biasTrainable);
        set
        {
            if (value) MakeBiasTrainable();
            else _biasTrainable = false;
        }
    }

    /// <summary>The bias as a float32 parameter once it was made trainable (its values are the live bias).</summary>
    public Parameter? BiasParameter => _biasParam;

    /// <summary>Moves the bias into an owned float32 parameter (trainable or not); null without bias.</summary>
    public Parameter? EnsureBiasParameter()
    {
        if (_bias == null) return null;
        if (_biasParam != null) return _biasParam;
        _biasParam = new Parameter(Name + ".bias", CopyF32(_bias));
        _bias = _biasParam.Value;
        return _biasParam;
    }

    static Tensor CopyF32(Tensor t)
    {
        var c = new Tensor(DType.F32, t.Shape);
        t.Floats.CopyTo(c.Floats);
        return c;
    }

    public void Forward(PassContext pass, float* x, float* y, int n)
    {
        // y (n,Out) = x (n,In) · W (Out,In)ᵀ
        pass.Kernels.Gemm(false, true, n, OutFeatures, InFeatures, 1f, MatrixView.F32(x, n, InFeatures), _weight.AsMatrix(), 0f, y, OutFeatures);
        if (_bias != null) AddBiasRows(y, n, _bias.Floats);
    }

    public void Backward(PassContext pass, float* dy, float* x, float* dx, int n)
    {
        var dyView = MatrixView.F32(dy, n, OutFeatures);
        // dx (n,In) += dy (n,Out) · W (Out,In)
        if (dx != null)
            pass.Kernels.Gemm(false, false, n, InFeatures, OutFeatures, 1f, dyView, _weight.AsMatrix(), 1f, dx, InFeatures);
        if (_weightParam != null)
        {
            // dW (Out,In) += dyᵀ (Out,n) · x (n,In)
            pass.Kernels.Gemm(true, false, OutFeatures, InFeatures, n, 1f, dyView, MatrixView.F32(x, n, InFeatures), 1f,
                (float*)_weightParam.Grad.Data, InFeatures);
        }
        if (BiasTrainable) AccumulateBiasGrad(dy, n, 1f);
    }

    /// <summary>db (Out) += alpha · Σ_rows dy (n, Out). Adapters that rescale dy before calling Backward correct with it.</summary>
    public void AccumulateBiasGrad(float* dy, int n, float alpha)
    {
        if (!BiasTrainable) return;
        var db = _biasParam!.Grad.Floats;
        for (int i = 0; i < n; i++)
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(dy + (long)i * OutFeatures, OutFeatures), alpha, db, db);
    }

    public void ForwardNoBias(ComputeContext ctx, float* x, float* y, int n) =>
        ctx.Backend.Gemm(false, true, n, OutFeatures, InFeatures, 1f, MatrixView.F32(x, n, InFeatures), _weight.AsMatrix(), 0f, y, OutFeatures);

    public void WeightTimesTransposed(ComputeContext ctx, float* a, int r, float* wat) =>
        ctx.Backend.Gemm(false, true, OutFeatures, r, InFeatures, 1f, _weight.AsMatrix(), MatrixView.F32(a, r, InFeatures), 0f, wat, r);

    public void RowNormsSquared(ComputeContext ctx, Span<double> dst)
    {
        var row = new float[InFeatures];
        for (int i = 0; i < OutFeatures; i++)
        {
            ReadRows(ctx, i, 1, row);
            double s = 0;
            foreach (var v in row) s += (double)v * v;
            dst[i] = s;
        }
    }

    public void ReadRows(ComputeContext ctx, int row0, int rows, Span<float> dst) =>
        DTypeConvert.ToFloat(_weight.Data + (long)row0 * InFeatures * _weight.DType.Size(), _weight.DType, dst[..(rows * InFeatures)]);

    bool _weightOwned;

    /// <summary>The weight tensor becomes this layer's (a copy its creator made for it): in-place merges write it
    /// directly and <see cref="Dispose"/> frees it.</summary>
    internal void OwnWeight() => _weightOwned = true;

    /// <summary>Mapped checkpoint weights are read-only: copy once into owned memory before the first in-place change.</summary>
    void EnsureOwnedWeight()
    {
        if (_weightOwned || Trainable) return;
        var copy = new Tensor(_weight.DType, _weight.Shape);
        Buffer.MemoryCopy(_weight.Data, copy.Data, copy.ByteLength, _weight.ByteLength);
        _weight = copy;
        _weightOwned = true;
    }

    public void AddToWeight(ComputeContext ctx, ReadOnlySpan<float> delta, float alpha)
    {
        EnsureOwnedWeight();
        if (delta.Length != OutFeatures * InFeatures) throw new ArgumentException($"{Name}: delta has {delta.Length} elements, expected {OutFeatures}×{InFeatures}");
        var row = new float[InFeatures];
        for (int i = 0; i < OutFeatures; i++)
        {
            ReadRows(ctx, i, 1, row);
            TensorPrimitives.MultiplyAdd(delta.Slice(i * InFeatures, InFeatures), alpha, row, row);
            DTypeConvert.FromFloat(row, _weight.DType, _weight.Data + (long)i * InFeatures * _weight.DType.Size());
        }
    }

    public ReadOnlySpan<float> BiasOrEmpty => _bias != null ? _bias.Floats : ReadOnlySpan<float>.Empty;

    internal static void AddBiasRows(float* y, int n, ReadOnlySpan<float> bias)
    {
        for (int i = 0; i < n; i++)
        {
            var row = new Span<float>(y + (long)i * bias.Length, bias.Length);
            TensorPrimitives.Add(row, bias, row);
        }
    }

    public IEnumerable<Parameter> Parameters()
    {
        if (_weightParam != null) yield return _weightParam;
        if (BiasTrainable) yield return _biasParam!;
    }

    public void Dispose()
    {
        if (_weightOwned) _weight.Dispose();
        _weightParam?.Dispose();
        _biasParam?.Dispose();
    }
}
