namespace PeftSharp.Peft;

/// <summary>
/// PEFT's save_pretrained(path_initial_model_for_weight_conversion=…): a PiSSA adapter (A, B) on the residual base
/// W_res = W − s·B0·A0 is rewritten as a standard LoRA of rank 2r on the ORIGINAL W:
///   A' = [A; A0] (2r, in),  B' = [B | −B0] (out, 2r),  r → 2r,  lora_alpha → 2·alpha (√2·alpha with rslora),
/// so that s'·B'·A' = s·(B·A − B0·A0) with s' = s, and W + s'·B'·A' = W_res + s·B·A. init_lora_weights becomes true.
/// </summary>
internal static class PissaConversion
{
    public static LoraConfig ConvertConfig(LoraConfig c)
    {
        // scaling = alpha/r (or alpha/√r with rslora) must stay the same when r doubles.
        double alphaFactor = c.UseRsLora ? Math.Sqrt(2) : 2;
        return c with
        {
            R = 2 * c.R,
            LoraAlpha = c.LoraAlpha * alphaFactor,
            RankPattern = c.RankPattern.Select(kv => new KeyValuePair<string, int>(kv.Key, 2 * kv.Value)).ToArray(),
            // PEFT doubles alpha_pattern values even with rslora (which changes those modules' scaling by √2);
            // this writer keeps the scaling exact instead.
            AlphaPattern = c.AlphaPattern.Select(kv => new KeyValuePair<string, double>(kv.Key, kv.Value * alphaFactor)).ToArray(),
            InitLoraWeights = "true",
        };
    }

    /// <summary>A' (2r, in) = [A; A0] and B' (out, 2r) = [B | −B0] for one module.</summary>
    public static (float[] A, float[] B) ConvertFactors(LoraAdapter ad)
    {
        var a0 = ad.InitialA ?? throw new InvalidOperationException("not a PiSSA adapter");
        var b0 = ad.InitialB!;
        var a = ad.A.Value.Floats;
        var b = ad.B.Value.Floats;
        int r = ad.Rank, inF = ad.A.Value.Shape[1], outF = ad.B.Value.Shape[0];
        var a2 = new float[2 * r * inF];
        a.CopyTo(a2.AsSpan(0, r * inF));
        a0.CopyTo(a2.AsSpan(r * inF, r * inF));
        var b2 = new float[outF * 2 * r];
        for (int o = 0; o < outF; o++)
            for (int j = 0; j < r; j++)
            {
                b2[o * 2 * r + j] = b[o * r + j];
                b2[o * 2 * r + r + j] = -b0[o * r + j];
            }
        return (a2, b2);
    }
}
