namespace PeftSharp.Kernels.Reference;

/// <summary>Naive float64 GeGLU with the tanh GELU (transformers' gelu_pytorch_tanh), the yardstick for <see cref="GeGlu"/>.</summary>
internal static class GeGluReference
{
    static readonly double K = Math.Sqrt(2 / Math.PI);

    public static double Gelu(double g) => 0.5 * g * (1 + Math.Tanh(K * (g + 0.044715 * g * g * g)));

    public static double[] Forward(double[] gate, double[] up)
    {
        var o = new double[gate.Length];
        for (int i = 0; i < o.Length; i++) o[i] = Gelu(gate[i]) * up[i];
        return o;
    }

    // d gelu_tanh(g)/dg = ½(1 + t) + ½ g (1 − t²) · K (1 + 3·0.044715 g²), t = tanh(K (g + 0.044715 g³))
    public static (double[] Dgate, double[] Dup) Backward(double[] dout, double[] gate, double[] up)
    {
        var dg = new double[gate.Length];
        var du = new double[gate.Length];
        for (int i = 0; i < gate.Length; i++)
        {
            double g = gate[i], t = Math.Tanh(K * (g + 0.044715 * g * g * g));
            du[i] = dout[i] * Gelu(g);
            dg[i] = dout[i] * up[i] * (0.5 * (1 + t) + 0.5 * g * (1 - t * t) * K * (1 + 3 * 0.044715 * g * g));
        }
        return (dg, du);
    }
}
