using PeftSharp.Tensors;

namespace PeftSharp.Quantization.IntGroup;

/// <summary>
/// Reads one GPTQ or AWQ projection from its checkpoint tensors (module prefix P) into an <see cref="IntGroupWeight"/>,
/// checking every dtype, shape and index against the packing:
/// <code>
/// GPTQ (AutoGPTQ / GPTQModel / optimum, p = 32 / bits codes per int32, G = ceil(in / group_size)):
///   P.qweight  int32 [in / p, out]   input i of output o in word [i / p, o], bits (i % p)·bits upwards
///   P.qzeros   int32 [G, out / p]    zero of (g, o) in word [g, o / p], bits (o % p)·bits; v1 (checkpoint_format
///                                    "gptq") stores z − 1, the kernels read ((word » shift) &amp; mask) + 1
///   P.scales   fp16  [G, out]
///   P.g_idx    int32 [in]            group of input i (desc_act: a permuted grouping; otherwise i / group_size)
/// AWQ GEMM (AutoAWQ, 4-bit, G = in / group_size):
///   P.qweight  int32 [in, out / 8]   output o of input i in word [i, o / 8] at nibble ORDER⁻¹[o % 8],
///                                    ORDER = [0, 2, 4, 6, 1, 3, 5, 7] (nibble j holds column 8·(o / 8) + ORDER[j])
///   P.qzeros   int32 [G, out / 8]    the same interleaving; no offset
///   P.scales   fp16  [G, out]
/// </code>
/// In both, W[o, i] = scales[g(i), o] · (q(i, o) − z(g(i), o)).
/// </summary>
internal static unsafe class IntGroupTensors
{
    /// <summary>AutoAWQ's packing order: nibble j of a word holds column ORDER[j] of its eight.</summary>
    public static readonly int[] AwqOrder = [0, 2, 4, 6, 1, 3, 5, 7];
    /// <summary>The nibble that holds column k of a word of eight (the inverse of <see cref="AwqOrder"/>).</summary>
    public static readonly int[] AwqNibbleOfColumn = [0, 4, 1, 5, 2, 6, 3, 7];

    /// <summary>True when the module is stored packed (a P.qweight tensor exists).</summary>
    public static bool IsQuantized(string module, Func<string, Tensor?> get) => get(module + ".qweight") != null;

    public static IntGroupWeight Read(string module, Func<string, Tensor?> get, string source, IntGroupConfig c, int outF, int inF)
    {
        int bits = c.Bits, per = 32 / bits;
        int gs = c.EffectiveGroupSize(inF), groups = c.Groups(inF);
        bool awq = c.Packing == IntGroupPacking.AwqGemm;
        string Where(string t) => $"{source}: tensor '{module}.{t}'";
        string what = $"{c.Method.ToUpperInvariant()} {bits}-bit, group_size {c.GroupSize}, of a [{outF}, {inF}] projection";
        if (awq && inF % gs != 0)
            throw new PeftException($"{Where("qweight")}: in_features {inF} is not a multiple of quantization_config.group_size {gs} (AWQ groups must tile the input)");
        if (!awq && inF % per != 0)
            throw new PeftException($"{Where("qweight")}: in_features {inF} is not a multiple of {per} (GPTQ packs {per} {bits}-bit codes per int32 along the input)");
        if (outF % per != 0)
            throw new PeftException($"{Where("qzeros")}: out_features {outF} is not a multiple of {per} ({c.Method.ToUpperInvariant()} packs {per} zero points per int32 along the output)");

        var qweight = Need(module, "qweight", get, source, DType.I32, awq ? new[] { inF, outF / per } : new[] { inF / per, outF }, what);
        var qzeros = Need(module, "qzeros", get, source, DType.I32, [groups, outF / per], what);
        var scalesT = get(module + ".scales") ?? throw new PeftException($"{Where("scales")}: missing (expected [{groups}, {outF}] fp16 scales, {what})");
        if (scalesT.DType is not (DType.F16 or DType.BF16 or DType.F32))
            throw new PeftException($"{Where("scales")} is {scalesT.DType}; expected F16 (or BF16, F32)");
        CheckShape(scalesT, [groups, outF], Where("scales"), what);

        var group = new int[inF];
        var gIdx = awq ? null : get(module + ".g_idx");
        if (gIdx == null)
        {
            if (c.DescAct) throw new PeftException($"{Where("g_idx")}: missing; quantization_config.desc_act is true, so the input grouping must be stored");
            for (int i = 0; i < inF; i++) group[i] = i / gs;
        }
        else
        {
            if (gIdx.DType != DType.I32) throw new PeftException($"{Where("g_idx")} is {gIdx.DType}; expected I32");
            CheckShape(gIdx, [inF], Where("g_idx"), what);
            var g = gIdx.Span<int>();
            for (int i = 0; i < inF; i++)
            {
                if ((uint)g[i] >= (uint)groups)
                    throw new PeftException($"{Where("g_idx")}: entry {i} is {g[i]}, outside the {groups} groups [0, {groups - 1}] of {what}");
                group[i] = g[i];
            }
        }

        int words = (inF + per - 1) / per;
        var codes = new uint[(long)outF * words];
        var w = qweight.Span<uint>();
        if (awq)
        {
            // [in, out/8] words, nibble AwqNibbleOfColumn[o % 8] of word (i, o / 8) → row o, input i
            int wpr = outF / 8;
            for (int i = 0; i < inF; i++)
                for (int o = 0; o < outF; o++)
                {
                    uint q = (w[i * wpr + o / 8] >> (4 * AwqNibbleOfColumn[o % 8])) & 0xF;
                    codes[(long)o * words + i / 8] |= q << (4 * (i % 8));
                }
        }
        else
        {
            // GPTQ's words already pack consecutive inputs of one output: a transpose [in/p, out] → [out, in/p]
            for (int p = 0; p < words; p++)
                for (int o = 0; o < outF; o++) codes[(long)o * words + p] = w[p * outF + o];
        }

        var zeros = new float[(long)outF * groups];
        var scales = new float[(long)outF * groups];
        var z = qzeros.Span<uint>();
        uint mask = (1u << bits) - 1;
        int offset = c.Packing == IntGroupPacking.GptqV1 ? 1 : 0;
        var srow = new float[outF];
        for (int g = 0; g < groups; g++)
        {
            DTypeConvert.ToFloat(scalesT.Data + (long)g * outF * scalesT.DType.Size(), scalesT.DType, srow);
            for (int o = 0; o < outF; o++)
            {
                int shift = bits * (awq ? AwqNibbleOfColumn[o % 8] : o % per);
                zeros[(long)o * groups + g] = ((z[g * (outF / per) + o / per] >> shift) & mask) + offset;
                scales[(long)o * groups + g] = srow[o];
            }
        }
        return new IntGroupWeight(c, outF, inF, codes, zeros, scales, group);
    }

    static Tensor Need(string module, string field, Func<string, Tensor?> get, string source, DType dtype, int[] shape, string what)
    {
        string where = $"{source}: tensor '{module}.{field}'";
        var t = get(module + "." + field) ?? throw new PeftException($"{where}: missing (expected {dtype} [{string.Join(", ", shape)}], {what})");
        if (t.DType != dtype) throw new PeftException($"{where} is {t.DType}; expected {dtype} (packed codes)");
        CheckShape(t, shape, where, what);
        return t;
    }

    static void CheckShape(Tensor t, int[] shape, string where, string what)
    {
        if (!t.Shape.AsSpan().SequenceEqual(shape))
            throw new PeftException($"{where} has shape {t.ShapeString}, expected [{string.Join(", ", shape)}] for {what}");
    }
}
