using PeftSharp.Compute;

namespace PeftSharp.Models;

/// <summary>RMSNorm of a model's <see cref="Norm"/> with its weight offset (Gemma's 1 + w), so call sites cannot
/// forget the offset.</summary>
internal static class NormOps
{
    /// <summary>output (n,c) = norm(input); rstd (n) saved for the backward.</summary>
    public static void NormForward(this IComputeBackend k, Norm norm, Span<float> output, Span<float> rstd, ReadOnlySpan<float> input, int n, int c, float eps)
    {
        if (norm.Offset == 0) k.RmsNormForward(output, rstd, input, norm.Values, n, c, eps);
        else k.RmsNormForward(output, rstd, input, norm.Values, n, c, eps, norm.Offset);
    }

    /// <summary>dinput (n,c) += dL/dinput; the norm's gradient += dL/dw when it is trainable.</summary>
    public static void NormBackward(this IComputeBackend k, Norm norm, Span<float> dinput, ReadOnlySpan<float> doutput, ReadOnlySpan<float> input,
        ReadOnlySpan<float> rstd, int n, int c)
    {
        if (norm.Offset == 0) k.RmsNormBackward(dinput, norm.GradOrEmpty, doutput, input, norm.Values, rstd, n, c);
        else k.RmsNormBackward(dinput, norm.GradOrEmpty, doutput, input, norm.Values, rstd, n, c, norm.Offset);
    }
}
