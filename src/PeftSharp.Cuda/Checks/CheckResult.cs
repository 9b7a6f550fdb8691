namespace PeftSharp.Cuda;

/// <summary>One comparison of the device path with the CPU: the relative error ‖got − want‖ / ‖want‖ against its bound.</summary>
internal sealed record CheckResult(string Name, double Error, double Tolerance)
{
    public bool Passed => Error <= Tolerance;

    public static double RelativeError(ReadOnlySpan<float> got, ReadOnlySpan<float> want)
    {
        if (got.Length != want.Length) return double.PositiveInfinity;
        double num = 0, den = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double d = (double)got[i] - want[i];
            if (!double.IsFinite(got[i])) return double.PositiveInfinity;
            num += d * d;
            den += (double)want[i] * want[i];
        }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }

    public static double RelativeError(double got, double want) =>
        !double.IsFinite(got) ? double.PositiveInfinity : Math.Abs(got - want) / Math.Max(Math.Abs(want), 1e-30);

    /// <summary>The worst of several errors.</summary>
    public static double Worst(params double[] errors) => errors.Length == 0 ? 0 : errors.Max();
}
