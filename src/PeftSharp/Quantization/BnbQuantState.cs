using System.Globalization;
using System.Text;
using System.Text.Json;
using PeftSharp.Tensors;

namespace PeftSharp.Quantization;

/// <summary>
/// The tensors bitsandbytes writes for a 4-bit Linear (Linear4bit._save_to_state_dict / QuantState.as_dict(packed=True),
/// reference §5.5), as plain (name, tensor) pairs for a safetensors writer, and the inverse. For a module prefix P:
/// <code>
/// P.weight                                uint8 [(n+1)/2, 1]  packed codes
/// P.weight.absmax                         uint8 [nblocks] (nested) | float32 [nblocks]
/// P.weight.quant_map                      float32 [16]
/// P.weight.nested_absmax                  float32 [ceil(nblocks/256)]   (nested only)
/// P.weight.nested_quant_map               float32 [256]                 (nested only)
/// P.weight.quant_state.bitsandbytes__nf4  uint8 [len] UTF-8 JSON {"quant_type","blocksize","dtype","shape"[,"nested_blocksize","nested_dtype","nested_offset"]}
/// </code>
/// The JSON is written as Python's json.dumps does (", " and ": " separators, keys in as_dict order).
/// </summary>
internal static unsafe class BnbQuantState
{
    public static string QuantStateKey(string prefix, Quant4Type t) => $"{prefix}.weight.quant_state.bitsandbytes__{t.BnbName()}";

    /// <summary>The tensors of one quantized weight. The caller owns (disposes) the returned tensors.</summary>
    public static List<(string Name, Tensor Tensor)> ToTensors(string prefix, Quantized4Bit q)
    {
        var list = new List<(string, Tensor)>();
        var w = new Tensor(DType.U8, checked((int)q.PackedByteLength), 1);
        q.PackedSpan.CopyTo(w.Span<byte>());
        list.Add(($"{prefix}.weight", w));
        if (q.DoubleQuant)
        {
            list.Add(($"{prefix}.weight.absmax", Bytes(q.QuantizedAbsmax!)));
            list.Add(($"{prefix}.weight.quant_map", Floats(q.QuantMap)));
            list.Add(($"{prefix}.weight.nested_absmax", Floats(q.NestedAbsmax!)));
            list.Add(($"{prefix}.weight.nested_quant_map", Floats(q.NestedQuantMap!)));
        }
        else
        {
            list.Add(($"{prefix}.weight.absmax", Floats(q.Absmax!)));
            list.Add(($"{prefix}.weight.quant_map", Floats(q.QuantMap)));
        }
        list.Add((QuantStateKey(prefix, q.QuantType), Bytes(Encoding.UTF8.GetBytes(QuantStateJson(q)))));
        return list;
    }

    /// <summary>The non-tensor quant-state items as bitsandbytes' pack_dict_to_tensor writes them.</summary>
    public static string QuantStateJson(Quantized4Bit q)
    {
        var sb = new StringBuilder();
        sb.Append("{\"quant_type\": \"").Append(q.QuantType.BnbName()).Append("\", ");
        sb.Append("\"blocksize\": ").Append(q.BlockSize.ToString(CultureInfo.InvariantCulture)).Append(", ");
        sb.Append("\"dtype\": \"").Append(q.DTypeName).Append("\", ");
        sb.Append("\"shape\": [").Append(string.Join(", ", q.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture)))).Append(']');
        if (q.DoubleQuant)
        {
            sb.Append(", \"nested_blocksize\": ").Append(Quantized4Bit.NestedBlockSize);
            sb.Append(", \"nested_dtype\": \"float32\"");
            sb.Append(", \"nested_offset\": ").Append(PythonFloatRepr(q.NestedOffset));
        }
        sb.Append('}');
        return sb.ToString();
    }

    /// <summary>repr() of a Python float holding this float32 value (shortest round-trip digits of the double).</summary>
    public static string PythonFloatRepr(double v)
    {
        if (double.IsNaN(v)) return "NaN";
        if (double.IsInfinity(v)) return v > 0 ? "Infinity" : "-Infinity";
        string s = v.ToString("R", CultureInfo.InvariantCulture);
        int e = s.IndexOf('E');
        if (e >= 0)
        {
            string mant = s[..e], exp = s[(e + 1)..];
            char sign = exp[0] == '-' ? '-' : '+';
            string digits = exp.TrimStart('+', '-').TrimStart('0');
            if (digits.Length < 2) digits = digits.PadLeft(2, '0');
            return $"{mant}e{sign}{digits}";
        }
        if (Math.Abs(v) >= 1e16)
        {
            // Python switches to exponent notation from 1e16 on; .NET prints the integer digits
            string digits = s.TrimStart('-');
            int exp10 = digits.Length - 1;
            string m = digits.TrimEnd('0');
            string mant = m.Length > 1 ? m[0] + "." + m[1..] : m;
            return (v < 0 ? "-" : "") + mant + "e+" + exp10.ToString("00", CultureInfo.InvariantCulture);
        }
        return s.Contains('.') ? s : s + ".0";
    }

    /// <summary>True if the tensors hold a bitsandbytes 4-bit quant state for module prefix P.</summary>
    public static bool IsQuantized(string prefix, Func<string, Tensor?> get)
        => get(QuantStateKey(prefix, Quant4Type.NF4)) != null || get(QuantStateKey(prefix, Quant4Type.FP4)) != null;

    public static Quantized4Bit FromTensors(string prefix, IReadOnlyDictionary<string, Tensor> tensors, string source)
        => FromTensors(prefix, k => tensors.TryGetValue(k, out var t) ? t : null, source);

    /// <summary>Reads a quantized weight back from its tensors. <paramref name="source"/> (the file) is named in errors.</summary>
    public static Quantized4Bit FromTensors(string prefix, Func<string, Tensor?> get, string source)
    {
        Tensor? stateTensor = get(QuantStateKey(prefix, Quant4Type.NF4));
        var keyType = Quant4Type.NF4;
        if (stateTensor == null) { stateTensor = get(QuantStateKey(prefix, Quant4Type.FP4)); keyType = Quant4Type.FP4; }
        string where = $"{source}: {prefix}.weight";
        if (stateTensor == null)
            throw new PeftException($"{where}: missing '{prefix}.weight.quant_state.bitsandbytes__nf4' (or __fp4)");
        if (stateTensor.DType != DType.U8) throw new PeftException($"{where}: quant_state tensor must be U8, got {stateTensor.DType}");

        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(stateTensor.Span<byte>().ToArray());
            root = doc.RootElement.Clone();
        }
        catch (JsonException e) { throw new PeftException($"{where}: quant_state is not valid JSON ({e.Message})"); }
        if (root.ValueKind != JsonValueKind.Object) throw new PeftException($"{where}: quant_state JSON must be an object");
        // Found by fuzzing: JsonDocument accepts invalid UTF-8 inside strings and fails only when one is read.
        if (!System.Text.Unicode.Utf8.IsValid(stateTensor.Span<byte>()))
            throw new PeftException($"{where}: quant_state JSON is not valid UTF-8");

        string quantTypeName = GetString(root, "quant_type", where);
        var type = Quant4TypeNames.ParseBnb(quantTypeName, where);
        if (type != keyType)
            throw new PeftException($"{where}: quant_type \"{quantTypeName}\" does not match the quant_state key suffix");
        int blockSize = GetInt(root, "blocksize", where);
        string dtypeName = GetString(root, "dtype", where);
        if (dtypeName is not ("bfloat16" or "float16" or "float32"))
            throw new PeftException($"{where}: quant_state dtype \"{dtypeName}\" is not supported (expected bfloat16, float16 or float32)");
        if (!root.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw new PeftException($"{where}: quant_state has no \"shape\" list");
        var shape = shapeEl.EnumerateArray().Select(e => e.TryGetInt32(out int d) && d >= 0 ? d
            : throw new PeftException($"{where}: quant_state shape has a non-integer entry")).ToArray();

        var weight = Require(get, $"{prefix}.weight", where);
        // quant_storage other than uint8 (FSDP) views the same bytes as another dtype
        var packed = new ReadOnlySpan<byte>(Ptr(weight), checked((int)weight.ByteLength));
        long n = Tensor.CountElements(shape);
        if (packed.Length > (n + 1) / 2) packed = packed[..(int)((n + 1) / 2)];

        // bitsandbytes dequantizes with its built-in table (the CUDA trees / CODE[quant_type]) and never reads the stored
        // quant_map; we do the same, after checking the stored one is that table.
        var storedMap = FloatsOf(Require(get, $"{prefix}.weight.quant_map", where), $"{where}.quant_map");
        var quantMap = Quant4Tables.Code(type).ToArray();
        if (storedMap.Length != 16) throw new PeftException($"{where}: quant_map has {storedMap.Length} values, expected 16");
        for (int k = 0; k < 16; k++)
            if (Math.Abs(storedMap[k] - quantMap[k]) > 1e-6f)
                throw new PeftException($"{where}: quant_map[{k}] = {storedMap[k]} is not bitsandbytes' {type.BnbName()} value {quantMap[k]}");
        var absmaxT = Require(get, $"{prefix}.weight.absmax", where);
        bool nested = root.TryGetProperty("nested_offset", out _) || get($"{prefix}.weight.nested_absmax") != null;
        if (!nested)
        {
            if (absmaxT.DType != DType.F32) throw new PeftException($"{where}.absmax: expected F32 without double quantization, got {absmaxT.DType}");
            return Quantized4Bit.FromParts(shape, blockSize, type, dtypeName, packed, quantMap, FloatsOf(absmaxT, where + ".absmax"),
                null, null, null, 0f, where);
        }
        if (absmaxT.DType != DType.U8) throw new PeftException($"{where}.absmax: expected U8 codes with double quantization, got {absmaxT.DType}");
        int nestedBlock = GetInt(root, "nested_blocksize", where);
        if (nestedBlock != Quantized4Bit.NestedBlockSize)
            throw new PeftException($"{where}: nested_blocksize {nestedBlock} is not supported (bitsandbytes requires 256)");
        string nestedDtype = GetString(root, "nested_dtype", where);
        if (nestedDtype != "float32") throw new PeftException($"{where}: nested_dtype \"{nestedDtype}\" is not supported (expected float32)");
        if (!root.TryGetProperty("nested_offset", out var offEl) || offEl.ValueKind != JsonValueKind.Number)
            throw new PeftException($"{where}: quant_state has no numeric \"nested_offset\"");
        float offset = (float)offEl.GetDouble();
        var nestedAbsmax = FloatsOf(Require(get, $"{prefix}.weight.nested_absmax", where), where + ".nested_absmax");
        var nestedMap = FloatsOf(Require(get, $"{prefix}.weight.nested_quant_map", where), where + ".nested_quant_map");
        return Quantized4Bit.FromParts(shape, blockSize, type, dtypeName, packed, quantMap, null, absmaxT.Span<byte>().ToArray(),
            nestedAbsmax, nestedMap, offset, where);
    }

    static unsafe byte* Ptr(Tensor t) => t.Data;

    static Tensor Require(Func<string, Tensor?> get, string key, string where)
        => get(key) ?? throw new PeftException($"{where}: missing tensor '{key}'");

    static float[] FloatsOf(Tensor t, string where)
    {
        if (t.DType == DType.F32) return t.Floats.ToArray();
        if (t.DType is DType.BF16 or DType.F16) { using var f = t.ToF32(); return f.Floats.ToArray(); }
        throw new PeftException($"{where}: expected a float tensor, got {t.DType}");
    }

    static string GetString(JsonElement root, string key, string where)
    {
        if (!root.TryGetProperty(key, out var e) || e.ValueKind != JsonValueKind.String)
            throw new PeftException($"{where}: quant_state has no string \"{key}\"");
        try { return e.GetString()!; }
        catch (InvalidOperationException x) { throw new PeftException($"{where}: quant_state \"{key}\" is not valid Unicode ({x.Message})"); }
    }

    static int GetInt(JsonElement root, string key, string where)
        => root.TryGetProperty(key, out var e) && e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) ? v
            : throw new PeftException($"{where}: quant_state has no integer \"{key}\"");

    static Tensor Floats(ReadOnlySpan<float> v)
    {
        var t = new Tensor(DType.F32, v.Length);
        v.CopyTo(t.Floats);
        return t;
    }

    static Tensor Bytes(ReadOnlySpan<byte> v)
    {
        var t = new Tensor(DType.U8, v.Length);
        v.CopyTo(t.Span<byte>());
        return t;
    }
}
