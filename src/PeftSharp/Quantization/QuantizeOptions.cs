using System.Text.Json.Nodes;

namespace PeftSharp.Quantization;

/// <summary>
/// Load-time 4-bit quantization of the decoder's linear projections (transformers' BitsAndBytesConfig with
/// load_in_4bit). Defaults are QLoRA's (NF4, double quantization, blocksize 64); bitsandbytes' own default type is FP4.
/// </summary>
public sealed record QuantizeOptions(Quant4Type Type = Quant4Type.NF4, bool DoubleQuant = true, int BlockSize = 64)
{
    /// <summary>Options from user input; an unknown type or a bad block size is a <see cref="PeftException"/>.</summary>
    /// <param name="type">bitsandbytes quant type: "nf4" or "fp4" (case and surrounding spaces ignored).</param>
    /// <param name="doubleQuant">Quantize the per-block absmax values too (bnb_4bit_use_double_quant).</param>
    /// <param name="blockSize">Weights per absmax block (default 64).</param>
    /// <param name="where">Names the option in error messages (default "--quantize").</param>
    public static QuantizeOptions Parse(string type, bool doubleQuant, int blockSize = 64, string where = "--quantize")
    {
        var t = Quant4TypeNames.ParseBnb(type.Trim().ToLowerInvariant(), where);
        Quantized4Bit.CheckBlockSize(blockSize, where);
        return new QuantizeOptions(t, doubleQuant, blockSize);
    }

    /// <summary>e.g. "nf4 + double quant, blocksize 64".</summary>
    public override string ToString() => $"{Type.BnbName()}{(DoubleQuant ? " + double quant" : "")}, blocksize {BlockSize}";

    /// <summary>transformers' quantization_config for a bitsandbytes 4-bit checkpoint (BitsAndBytesConfig.to_dict keys).
    /// The blocksize is not a BitsAndBytesConfig field (transformers always uses 64); it is kept in each weight's quant state.</summary>
    public JsonObject ToQuantizationConfig(string computeDtype = "bfloat16") => new()
    {
        ["_load_in_4bit"] = true,
        ["_load_in_8bit"] = false,
        ["bnb_4bit_compute_dtype"] = computeDtype,
        ["bnb_4bit_quant_storage"] = "uint8",
        ["bnb_4bit_quant_type"] = Type.BnbName(),
        ["bnb_4bit_use_double_quant"] = DoubleQuant,
        ["llm_int8_enable_fp32_cpu_offload"] = false,
        ["llm_int8_has_fp16_weight"] = false,
        ["llm_int8_skip_modules"] = null,
        ["llm_int8_threshold"] = 6.0,
        ["load_in_4bit"] = true,
        ["load_in_8bit"] = false,
        ["quant_method"] = "bitsandbytes",
    };
}
