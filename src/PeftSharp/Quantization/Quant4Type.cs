namespace PeftSharp.Quantization;

/// <summary>The two 4-bit data types bitsandbytes' <c>quantize_4bit</c> accepts.</summary>
public enum Quant4Type
{
    /// <summary>NormalFloat4: 16 quantiles of N(0,1) scaled to [-1, 1] with an exact 0 (QLoRA paper §3).</summary>
    NF4,
    /// <summary>FP4 E2M1, sign-magnitude: bit 3 is the sign, bits 0–2 index a magnitude (bitsandbytes' default type).</summary>
    FP4,
}

internal static class Quant4TypeNames
{
    /// <summary>The bitsandbytes spelling ("nf4" / "fp4").</summary>
    public static string BnbName(this Quant4Type t) => t == Quant4Type.NF4 ? "nf4" : "fp4";

    public static Quant4Type ParseBnb(string name, string where) => name switch
    {
        "nf4" => Quant4Type.NF4,
        "fp4" => Quant4Type.FP4,
        _ => throw new PeftException($"{where}: quant_type '{name}' is not supported (expected \"nf4\" or \"fp4\")"),
    };
}
