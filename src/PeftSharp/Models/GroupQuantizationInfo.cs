using System.Globalization;

namespace PeftSharp.Models;

/// <summary>
/// How a GPTQ or AWQ checkpoint's projections are stored: w = s·(q − z) per group of input channels, q unsigned
/// <paramref name="Bits"/>-bit integers packed into int32 words (see the format notes in README).
/// </summary>
/// <param name="Method">"gptq" or "awq" (quantization_config.quant_method).</param>
/// <param name="Bits">Bits per code (GPTQ 4 or 8, AWQ 4).</param>
/// <param name="GroupSize">Input channels per group; −1 is one group per output row.</param>
/// <param name="DescAct">GPTQ's act-order: groups follow a permutation of the inputs (g_idx).</param>
/// <param name="Sym">GPTQ's symmetric quantization (zero point 2^(bits−1)).</param>
/// <param name="CheckpointFormat">"gptq" (AutoGPTQ, zeros stored minus one), "gptq_v2" (GPTQModel) or "gemm" (AWQ).</param>
/// <param name="QuantizedModules">Projections stored packed.</param>
/// <param name="DenseProjections">Projections stored dense in the checkpoint.</param>
/// <param name="BitsPerParameter">Checkpoint bits per weight of the packed projections (codes, zeros, scales, g_idx).</param>
/// <param name="PermutedModules">Packed projections whose g_idx is not the plain grouping i / group_size.</param>
/// <param name="UnquantizedModules">Module kinds kept unquantized.</param>
public sealed record GroupQuantizationInfo(string Method, int Bits, int GroupSize, bool DescAct, bool Sym, string CheckpointFormat,
    int QuantizedModules, int DenseProjections, double BitsPerParameter, int PermutedModules, string[] UnquantizedModules)
{
    /// <summary>e.g. "GPTQ 4-bit, group 128, desc_act, sym".</summary>
    public string Scheme =>
        $"{Method.ToUpperInvariant()} {Bits}-bit, group {(GroupSize == -1 ? "-1 (one per row)" : GroupSize.ToString(CultureInfo.InvariantCulture))}" +
        (Method == "gptq" ? $"{(DescAct ? ", desc_act" : "")}, {(Sym ? "sym" : "asym")}" : ", zero point");

    /// <summary>One line: how many projections are packed, in which scheme, bits per parameter, and what stays dense.</summary>
    public override string ToString() =>
        $"{QuantizedModules} linear projections in {Scheme} (checkpoint format {CheckpointFormat}, " +
        $"{BitsPerParameter.ToString("0.###", CultureInfo.InvariantCulture)} bits/parameter" +
        $"{(PermutedModules > 0 ? $", {PermutedModules} with a permuted g_idx" : "")}), dequantized per chunk into the products; " +
        $"kept unquantized: {string.Join("; ", UnquantizedModules)}";
}
