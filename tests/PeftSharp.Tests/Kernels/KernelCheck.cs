using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Kernels;

/// <summary>Helpers for kernel tests: float/double conversion and a float64 central-difference gradient.</summary>
public static class KernelCheck
{
    public static double[] ToDouble(float[] a) => Array.ConvertAll(a, x => (double)x);

    public static double[] RandomDoubles(Random rng, int n, double scale = 1)
    {
        var a = new double[n];
        for (int i = 0; i < n; i++) a[i] = (rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    public static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>∂loss/∂x by central differences, step h, x restored afterwards.</summary>
    public static double[] NumericGradient(Func<double> loss, double[] x, double h = 1e-5)
    {
        var g = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + h; double up = loss();
            x[i] = keep - h; double down = loss();
            x[i] = keep;
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    public static void AssertGradient(double[] analytic, Func<double> loss, double[] x, string what, double tol = 1e-6)
    {
        var numeric = NumericGradient(loss, x);
        double e = Numerics.RelativeError(analytic, numeric);
        Assert.True(e < tol, $"{what}: analytic vs finite-difference relative error {e:E3} ≥ {tol:E1}");
    }

    /// <summary>The increment a kernel added onto <paramref name="initial"/>: after − initial, for "+=" checks.</summary>
    public static float[] Added(float[] after, float[] initial)
    {
        var d = new float[after.Length];
        for (int i = 0; i < d.Length; i++) d[i] = after[i] - initial[i];
        return d;
    }

    /// <summary>expected + initial, for comparing an accumulated gradient in one step (no cancellation in the difference).</summary>
    public static double[] Plus(double[] expected, float[] initial)
    {
        var d = new double[expected.Length];
        for (int i = 0; i < d.Length; i++) d[i] = expected[i] + initial[i];
        return d;
    }
}
