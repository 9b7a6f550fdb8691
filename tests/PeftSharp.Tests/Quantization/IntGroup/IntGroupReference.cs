using PeftSharp.Tensors;

namespace PeftSharp.Tests.Quantization.IntGroup;

/// <summary>
/// An independent float64 dequantization of GPTQ and AWQ checkpoint tensors, written from the format definitions
/// (AutoGPTQ's QuantLinear buffers and torch fallback; GPTQModel's v2 zeros; AutoAWQ's GEMM packing and its
/// dequantize_gemm), reading the checkpoint layout directly: nothing is shared with the engine's loader or kernel.
/// Returns W as [out, in] row-major (nn.Linear's layout; the checkpoints store the transposed [in, out] product).
/// </summary>
internal static class IntGroupReference
{
    /// <summary>AutoAWQ's AWQ_ORDER: word nibble j carries column ORDER[j] of its group of eight.</summary>
    static readonly int[] Order = [0, 2, 4, 6, 1, 3, 5, 7];

    public static double[] Dequantize(IReadOnlyDictionary<string, Tensor> t, string module, string method, bool zerosMinusOne,
        int bits, int groupSize, int outF, int inF)
    {
        var qweight = t[module + ".qweight"].Span<int>().ToArray();
        var qzeros = t[module + ".qzeros"].Span<int>().ToArray();
        var scales = t[module + ".scales"].Span<Half>().ToArray();
        int gs = groupSize == -1 ? inF : groupSize;
        long mask = (1L << bits) - 1;
        var w = new double[(long)outF * inF];
        if (method == "gptq")
        {
            int per = 32 / bits;
            int[] gIdx = t.TryGetValue(module + ".g_idx", out var gi) ? gi.Span<int>().ToArray() : Enumerable.Range(0, inF).Select(i => i / gs).ToArray();
            for (int i = 0; i < inF; i++)
                for (int o = 0; o < outF; o++)
                {
                    // qweight [in/per, out]: row i/per, bits (i%per)·bits; qzeros [G, out/per]: column o/per, bits (o%per)·bits
                    long q = ((long)(uint)qweight[(i / per) * outF + o] >> ((i % per) * bits)) & mask;
                    int g = gIdx[i];
                    long z = ((long)(uint)qzeros[g * (outF / per) + o / per] >> ((o % per) * bits)) & mask;
                    if (zerosMinusOne) z += 1;
                    w[(long)o * inF + i] = (double)scales[g * outF + o] * (q - z);
                }
            return w;
        }
        // AWQ GEMM: qweight [in, out/8], qzeros [G, out/8]; column c of a word's eight sits at the nibble j with ORDER[j] == c
        for (int i = 0; i < inF; i++)
            for (int o = 0; o < outF; o++)
            {
                int nibble = Array.IndexOf(Order, o % 8);
                long q = ((long)(uint)qweight[i * (outF / 8) + o / 8] >> (4 * nibble)) & 0xF;
                int g = i / gs;
                long z = ((long)(uint)qzeros[g * (outF / 8) + o / 8] >> (4 * nibble)) & 0xF;
                w[(long)o * inF + i] = (double)scales[g * outF + o] * (q - z);
            }
        return w;
    }
}
