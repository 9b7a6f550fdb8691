namespace PeftSharp.Kernels.Reference;

/// <summary>Naive float64 SwiGLU, the yardstick for <see cref="SwiGlu"/>.</summary>
internal static class SwiGluReference
{
    static double Sigmoid(double z) => 1 / (1 + Math.Exp(-z));

    public static double[] Forward(double[] gate, double[] up)
    {
        var o = new double[gate.Length];
        for (int i = 0; i < o.Length; i++) o[i] = gate[i] * Sigmoid(gate[i]) * up[i];
        return o;
    }

    // d silu(g)/dg = σ(g) + g σ(g)(1 − σ(g))
    public static (double[] Dgate, double[] Dup) Backward(double[] dout, double[] gate, double[] up)
    {
        var dg = new double[gate.Length];
        var du = new double[gate.Length];
        for (int i = 0; i < gate.Length; i++)
        {
            double s = Sigmoid(gate[i]);
            du[i] = dout[i] * gate[i] * s;
            dg[i] = dout[i] * up[i] * (s + gate[i] * s * (1 - s));
        }
        return (dg, du);
    }
}
