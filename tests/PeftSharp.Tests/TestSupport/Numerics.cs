namespace PeftSharp.Tests.TestSupport;

/// <summary>Shared numeric assertions for kernel tests.</summary>
internal static class Numerics
{
    /// <summary>‖actual − expected‖ / ‖expected‖ (expected must not be all zero).</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = actual[i] - expected[i];
            num += d * d;
            den += expected[i] * expected[i];
        }
        Assert.True(den > 0, "reference is all zero: the test would not detect a broken kernel");
        return Math.Sqrt(num / den);
    }

    public static double RelativeError(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = actual[i] - expected[i];
            num += d * d;
            den += expected[i] * expected[i];
        }
        Assert.True(den > 0, "reference is all zero: the test would not detect a broken kernel");
        return Math.Sqrt(num / den);
    }

    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double tol, string what)
    {
        double e = RelativeError(actual, expected);
        Assert.True(e < tol, $"{what}: relative error {e:E3} ≥ {tol:E1}");
    }

    public static float[] RandomFloats(Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }
}
