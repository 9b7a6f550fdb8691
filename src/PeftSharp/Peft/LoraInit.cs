namespace PeftSharp.Peft;

/// <summary>PEFT's initializations of A and B (layer.py reset_lora_parameters).</summary>
internal static class LoraInit
{
    public static void Initialize(LoraAdapter ad, string init, ulong seed)
    {
        var rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
        var a = ad.A.Value.Floats;
        var b = ad.B.Value.Floats;
        int inF = ad.A.Value.Shape[1];
        switch (init)
        {
            case var p when Pissa.IsPissa(p):
                // PiSSA needs the base weight (and rewrites it): PeftModel calls Pissa.Initialize instead.
                throw new PeftException($"init_lora_weights \"{init}\" is initialized from the base weight by Pissa.Initialize, not LoraInit");
            case LoftQ.Init:
                // LoftQ needs the base weight (and replaces it): PeftModel runs LoftQInit instead.
                throw new PeftException($"init_lora_weights \"{init}\" is initialized from the base weight by LoftQInit, not LoraInit");
            case "true":
                // kaiming_uniform_(a=√5) on A [r, in]: bound = 1/√in; B = 0 → the adapter starts as a no-op.
                Uniform(rng, a, 1.0 / Math.Sqrt(inF));
                b.Clear();
                break;
            case "gaussian":
                // A ~ N(0, 1/r), B = 0
                for (int i = 0; i < a.Length; i++) a[i] = (float)(Gaussian(rng) / ad.Rank);
                b.Clear();
                break;
            case "false":
                // nn.Linear's own init for both (not a no-op; PEFT documents it "for debugging").
                Uniform(rng, a, 1.0 / Math.Sqrt(inF));
                Uniform(rng, b, 1.0 / Math.Sqrt(ad.Rank));
                break;
            default:
                throw new PeftException($"init_lora_weights \"{init}\" is not supported");
        }
    }

    static void Uniform(Random rng, Span<float> x, double bound)
    {
        for (int i = 0; i < x.Length; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
    }

    static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
