using System.Text.Json.Nodes;

namespace PeftSharp.Quantization.IntGroup;

/// <summary>How a checkpoint packs its integer codes and zero points into int32 words.</summary>
internal enum IntGroupPacking
{
    /// <summary>AutoGPTQ's format (checkpoint_format "gptq"): zero points are stored minus one; the kernels add one back.</summary>
    GptqV1,
    /// <summary>GPTQModel's format (checkpoint_format "gptq_v2"): zero points are stored as they are.</summary>
    GptqV2,
    /// <summary>AutoAWQ's GEMM format: codes packed along the output dimension in the order [0, 2, 4, 6, 1, 3, 5, 7].</summary>
    AwqGemm,
}

/// <summary>
/// The quantization_config of a GPTQ or AWQ checkpoint (transformers' GPTQConfig / AwqConfig as saved in config.json):
/// weights are w = s·(q − z) per (group of input channels, output channel), q and z unsigned <see cref="Bits"/>-bit
/// integers packed eight (4-bit) or four (8-bit) to an int32.
/// </summary>
internal sealed record IntGroupConfig(string Method, IntGroupPacking Packing, int Bits, int GroupSize, bool DescAct, bool Sym)
{
    /// <summary>"gptq" / "gptq_v2" / "gemm": the checkpoint format name as the config spells it.</summary>
    public string FormatName => Packing switch
    {
        IntGroupPacking.GptqV1 => "gptq",
        IntGroupPacking.GptqV2 => "gptq_v2",
        _ => "gemm",
    };

    /// <summary>Input channels per group for a projection with <paramref name="inFeatures"/> inputs (group_size −1: one group).</summary>
    public int EffectiveGroupSize(int inFeatures) => GroupSize == -1 ? inFeatures : GroupSize;

    /// <summary>Groups along the input of a projection (GPTQ: ceil(in / group); AWQ requires in to be a multiple).</summary>
    public int Groups(int inFeatures) => (inFeatures + EffectiveGroupSize(inFeatures) - 1) / EffectiveGroupSize(inFeatures);

    /// <summary>
    /// Bytes of one [out, in] projection as stored in the checkpoint: packed codes, packed zeros (int32), scales (fp16),
    /// and GPTQ's g_idx (int32 per input).
    /// </summary>
    public long CheckpointBytes(int outFeatures, int inFeatures)
    {
        long groups = Groups(inFeatures);
        long codes = (long)outFeatures * inFeatures * Bits / 8;
        long zeros = groups * outFeatures * Bits / 8, scales = 2 * groups * outFeatures;
        long gIdx = Method == "gptq" ? 4L * inFeatures : 0;
        return codes + zeros + scales + gIdx;
    }

    /// <summary>Bytes one [out, in] projection occupies loaded (<see cref="IntGroupWeight.StorageBytes"/>): codes packed
    /// along the input, float32 zeros and scales per (output, group), the int32 group of each input.</summary>
    public long MemoryBytes(int outFeatures, int inFeatures)
    {
        int per = 32 / Bits;
        long words = (long)outFeatures * ((inFeatures + per - 1) / per);
        return 4 * words + 8L * outFeatures * Groups(inFeatures) + 4L * inFeatures;
    }

    /// <summary>Bits per weight of the checkpoint storage (codes + zeros + scales + g_idx).</summary>
    public double BitsPerParameter(int outFeatures, int inFeatures) => 8.0 * CheckpointBytes(outFeatures, inFeatures) / ((double)outFeatures * inFeatures);

    /// <summary>e.g. "GPTQ 4-bit, group 128, desc_act, sym (checkpoint format gptq)".</summary>
    public override string ToString() =>
        $"{Method.ToUpperInvariant()} {Bits}-bit, group {(GroupSize == -1 ? "-1 (one per row)" : GroupSize.ToString(System.Globalization.CultureInfo.InvariantCulture))}" +
        (Method == "gptq" ? $"{(DescAct ? ", desc_act" : "")}, {(Sym ? "sym" : "asym")}" : ", zero point") +
        $" (checkpoint format {FormatName})";

    /// <summary>
    /// The GPTQ/AWQ config of a config.json's quantization_config, null when it names another method (bitsandbytes is
    /// read from the weights' quant-state keys). Every unsupported or malformed field is a <see cref="PeftException"/>
    /// naming the file and the field.
    /// </summary>
    public static IntGroupConfig? Parse(JsonObject q, string path)
    {
        string where = $"{path}: quantization_config";
        string method = q["quant_method"] is JsonValue m && m.TryGetValue<string>(out var ms) ? ms.Trim().ToLowerInvariant() : "bitsandbytes";
        if (method == "bitsandbytes") return null;
        if (method is not ("gptq" or "awq"))
            throw new PeftException($"{where}.quant_method \"{method}\" is not supported (expected bitsandbytes, gptq or awq)");
        int bits = Int(q, "bits", where) ?? throw new PeftException($"{where}.bits: missing (expected {(method == "awq" ? "4" : "4 or 8")})");
        if (method == "awq" ? bits != 4 : bits is not (4 or 8))
            throw new PeftException($"{where}.bits: {bits}-bit {method.ToUpperInvariant()} is not supported (expected {(method == "awq" ? "4" : "4 or 8")})");
        int group = Int(q, "group_size", where) ?? (method == "awq" ? 128 : -1);
        if (group != -1 && group < 1) throw new PeftException($"{where}.group_size: {group} (expected a positive group size or -1)");
        if (q["pack_dtype"] is JsonValue pd && pd.TryGetValue<string>(out var pds) && pds.Trim().ToLowerInvariant() is not ("int32" or "torch.int32"))
            throw new PeftException($"{where}.pack_dtype \"{pds}\" is not supported (expected int32)");
        if (Bool(q, "lm_head", where) == true)
            throw new PeftException($"{where}.lm_head true is not supported (a packed lm_head; only the decoder projections load packed)");
        if (q["dynamic"] is JsonObject { Count: > 0 })
            throw new PeftException($"{where}.dynamic: per-module overrides of bits or group size are not supported (one scheme for every projection)");
        if (method == "awq")
        {
            string version = Str(q, "version", where) ?? "gemm";
            if (version.ToLowerInvariant() != "gemm")
                throw new PeftException($"{where}.version \"{version}\" is not supported (expected gemm: the GEMM packing is the one read here)");
            if (Bool(q, "zero_point", where) == false)
                throw new PeftException($"{where}.zero_point false is not supported (AWQ GEMM checkpoints carry zero points)");
            return new IntGroupConfig("awq", IntGroupPacking.AwqGemm, 4, group, false, false);
        }
        string format = Str(q, "checkpoint_format", where) ?? Str(q, "format", where) ?? "gptq";
        var packing = format.Trim().ToLowerInvariant() switch
        {
            "gptq" => IntGroupPacking.GptqV1,
            "gptq_v2" => IntGroupPacking.GptqV2,
            _ => throw new PeftException($"{where}.checkpoint_format \"{format}\" is not supported (expected gptq or gptq_v2)"),
        };
        return new IntGroupConfig("gptq", packing, bits, group, Bool(q, "desc_act", where) ?? false, Bool(q, "sym", where) ?? true);
    }

    /// <summary>The GPTQ/AWQ config of a config.json file, or null when it has none (or another method).</summary>
    public static IntGroupConfig? Read(string configPath)
    {
        JsonNode? q;
        try { q = JsonNode.Parse(File.ReadAllText(configPath))?["quantization_config"]; }
        catch (System.Text.Json.JsonException) { return null; }   // ModelConfig.Load reports a malformed file
        return q is JsonObject o ? Parse(o, configPath) : null;
    }

    static int? Int(JsonObject o, string key, string where) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<int>(out var i) => i,
        JsonValue v when v.TryGetValue<double>(out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue => (int)d,
        var n => throw new PeftException($"{where}.{key}: expected an integer, got {n.ToJsonString()}"),
    };

    static bool? Bool(JsonObject o, string key, string where) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        var n => throw new PeftException($"{where}.{key}: expected true or false, got {n.ToJsonString()}"),
    };

    static string? Str(JsonObject o, string key, string where) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        var n => throw new PeftException($"{where}.{key}: expected a string, got {n.ToJsonString()}"),
    };
}
