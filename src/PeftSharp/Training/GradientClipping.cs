using PeftSharp.Nn;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace PeftSharp.Training;

internal static class GradientClipping
{
    /// <summary>‖g‖₂ over all parameters (float64 accumulation); NaN/∞ if any gradient is non-finite.</summary>
    public static double GlobalNorm(IReadOnlyList<Parameter> parameters)
    {
        double sum = 0;
        foreach (var p in parameters)
        {
            var g = p.Grad.Floats;
            for (int i = 0; i < g.Length; i++) sum += (double)g[i] * g[i];
        }
        return Math.Sqrt(sum);
    }

    /// <summary>torch's clip_grad_norm_: scale by max/(norm+1e-6) when norm exceeds max. Returns the scale applied.</summary>
    public static float Clip(IReadOnlyList<Parameter> parameters, double norm, double maxNorm)
    {
        if (maxNorm <= 0 || norm <= maxNorm) return 1f;
        float scale = (float)(maxNorm / (norm + 1e-6));
        foreach (var p in parameters) TensorPrimitives.Multiply(p.Grad.Floats, scale, p.Grad.Floats);
        return scale;
    }
}
