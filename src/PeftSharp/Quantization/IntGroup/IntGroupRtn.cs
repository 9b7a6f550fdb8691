using PeftSharp.Tensors;

namespace PeftSharp.Quantization.IntGroup;

/// <summary>
/// Round-to-nearest quantization of a dense [out, in] weight into a GPTQ or AWQ checkpoint's exact tensors
/// (qweight, qzeros, fp16 scales, g_idx): test checkpoints and benchmark bases built from known weights. It is not
/// GPTQ's algorithm (no Hessian, no error feedback) — the codes are what RTN gives, the packing is the format's.
/// Per (group, output): min/max over the group's inputs (widened to include 0), scale = (max − min)/maxq
/// (sym: 2·max|w|/maxq with zero 2^(bits−1)), zero = round(−min/scale), q = clamp(round(w/scale) + zero, 0, maxq),
/// with the scale rounded to fp16 first so that dequantization reproduces the codes' grid.
/// </summary>
internal static unsafe class IntGroupRtn
{
    /// <summary>
    /// The tensors of module <paramref name="module"/> (P.qweight, P.qzeros, P.scales, and for GPTQ P.g_idx). With
    /// <paramref name="order"/> (GPTQ desc_act), input order[j] joins group j / group_size, as GPTQ's act-order
    /// quantization assigns them; otherwise group i / group_size. The caller owns the returned tensors.
    /// </summary>
    public static List<(string Name, Tensor Tensor)> Quantize(string module, ReadOnlySpan<float> w, int outF, int inF, IntGroupConfig c, int[]? order = null)
    {
        int bits = c.Bits, per = 32 / bits, maxq = (1 << bits) - 1;
        int gs = c.EffectiveGroupSize(inF), groups = c.Groups(inF);
        bool awq = c.Packing == IntGroupPacking.AwqGemm;
        if (order != null && (awq || order.Length != inF)) throw new ArgumentException("an input order is GPTQ's desc_act: one entry per input");
        var group = new int[inF];
        for (int j = 0; j < inF; j++) group[order?[j] ?? j] = j / gs;

        var zero = new int[groups * outF];
        var scaleH = new Half[groups * outF];
        for (int o = 0; o < outF; o++)
        {
            var lo = new float[groups]; var hi = new float[groups];   // ranges widened to include 0
            for (int i = 0; i < inF; i++)
            {
                float v = w[o * inF + i]; int g = group[i];
                lo[g] = Math.Min(lo[g], v); hi[g] = Math.Max(hi[g], v);
            }
            for (int g = 0; g < groups; g++)
            {
                float mn = lo[g], mx = hi[g];
                if (c.Sym && !awq) { mx = Math.Max(-mn, mx); mn = -mx; }
                if (mx == mn) { mn = -1; mx = 1; }
                var s = (Half)Math.Max((mx - mn) / maxq, 1e-4f);
                scaleH[g * outF + o] = s;
                // v1 stores z − 1 in the field, so it cannot hold z = 0 (it would read back as 2^bits): RTN keeps z ≥ 1 there
                int zMin = c.Packing == IntGroupPacking.GptqV1 ? 1 : 0;
                zero[g * outF + o] = c.Sym && !awq ? (maxq + 1) / 2 : Math.Clamp((int)MathF.Round(-mn / (float)s), zMin, maxq);
            }
        }

        var codes = new int[(long)outF * inF];   // q(i, o) at [i, o]
        for (int o = 0; o < outF; o++)
            for (int i = 0; i < inF; i++)
            {
                int g = group[i];
                float s = (float)scaleH[g * outF + o];
                codes[(long)i * outF + o] = Math.Clamp((int)MathF.Round(w[o * inF + i] / s) + zero[g * outF + o], 0, maxq);
            }

        var list = new List<(string, Tensor)>();
        var qweight = awq ? new Tensor(DType.I32, inF, outF / 8) : new Tensor(DType.I32, inF / per, outF);
        var qw = qweight.Span<uint>();
        if (awq)
            for (int i = 0; i < inF; i++)
                for (int o = 0; o < outF; o++)
                    qw[i * (outF / 8) + o / 8] |= (uint)codes[(long)i * outF + o] << (4 * IntGroupTensors.AwqNibbleOfColumn[o % 8]);
        else
            for (int i = 0; i < inF; i++)
                for (int o = 0; o < outF; o++)
                    qw[i / per * outF + o] |= (uint)codes[(long)i * outF + o] << (bits * (i % per));
        list.Add(($"{module}.qweight", qweight));

        var qzeros = new Tensor(DType.I32, groups, outF / per);
        var qz = qzeros.Span<uint>();
        uint mask = (uint)maxq;
        int stored = c.Packing == IntGroupPacking.GptqV1 ? -1 : 0;   // AutoGPTQ stores z − 1
        for (int g = 0; g < groups; g++)
            for (int o = 0; o < outF; o++)
            {
                int shift = bits * (awq ? IntGroupTensors.AwqNibbleOfColumn[o % 8] : o % per);
                qz[g * (outF / per) + o / per] |= ((uint)(zero[g * outF + o] + stored) & mask) << shift;
            }
        list.Add(($"{module}.qzeros", qzeros));

        var scales = new Tensor(DType.F16, groups, outF);
        scaleH.CopyTo(scales.Span<Half>());
        list.Add(($"{module}.scales", scales));
        if (!awq)
        {
            var gIdx = new Tensor(DType.I32, inF);
            group.CopyTo(gIdx.Span<int>());
            list.Add(($"{module}.g_idx", gIdx));
        }
        return list;
    }
}
