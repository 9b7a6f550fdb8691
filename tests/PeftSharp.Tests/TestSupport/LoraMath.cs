using PeftSharp.Peft;

namespace PeftSharp.Tests.TestSupport;

/// <summary>Naive float64 reference for an adapter's weight update.</summary>
internal static class LoraMath
{
    /// <summary>ΔW = s·B·A (out, in), accumulated in double.</summary>
    public static double[] Delta(LoraAdapter ad)
    {
        int r = ad.Rank, inF = ad.A.Value.Shape[1], outF = ad.B.Value.Shape[0];
        var a = ad.A.Value.Floats; var b = ad.B.Value.Floats;
        var d = new double[outF * inF];
        for (int o = 0; o < outF; o++)
            for (int i = 0; i < inF; i++)
            {
                double s = 0;
                for (int j = 0; j < r; j++) s += (double)b[o * r + j] * a[j * inF + i];
                d[o * inF + i] = ad.Scaling * s;
            }
        return d;
    }
}
