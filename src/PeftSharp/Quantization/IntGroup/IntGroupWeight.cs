using PeftSharp.Compute;

namespace PeftSharp.Quantization.IntGroup;

/// <summary>
/// One [out, in] weight quantized per (group of input channels, output channel) to unsigned integers:
/// W[o, i] = s[g(i), o] · (q[o, i] − z[g(i), o]), g(i) the group of input i (GPTQ's g_idx; i / group_size otherwise).
/// The loader (<see cref="IntGroupTensors"/>) turns each checkpoint's layout (GPTQ: codes packed along the input,
/// zeros along the output; AWQ: both along the output, interleaved) into one layout that serves the dequantization of
/// output-row chunks: codes packed along the input, row by row; zeros (with GPTQ v1's +1 applied) and scales as float32
/// per (row, group). The values are exactly the checkpoint's: q − z is a small integer and s a float16, so their product
/// is exact in float32.
/// </summary>
internal sealed class IntGroupWeight
{
    readonly uint[] _codes;    // [Out, WordsPerRow]: input i of row o in word i / PerWord at bit Bits·(i % PerWord)
    readonly float[] _zeros;   // [Out, Groups]
    readonly float[] _scales;  // [Out, Groups]
    readonly int[] _group;     // [In]: the group of each input channel

    public IntGroupConfig Config { get; }
    public int OutFeatures { get; }
    public int InFeatures { get; }
    public int Bits => Config.Bits;
    public int Groups { get; }
    public int GroupSize { get; }
    public int PerWord => 32 / Bits;
    public int WordsPerRow => (InFeatures + PerWord - 1) / PerWord;
    /// <summary>True when g_idx is not the identity grouping i / group_size (GPTQ with desc_act).</summary>
    public bool Permuted { get; }
    public long ElementCount => (long)OutFeatures * InFeatures;

    /// <summary>Bytes held in memory: codes, float32 zeros and scales, group index.</summary>
    public long StorageBytes => 4L * _codes.Length + 4L * _zeros.Length + 4L * _scales.Length + 4L * _group.Length;

    internal IntGroupWeight(IntGroupConfig config, int outFeatures, int inFeatures, uint[] codes, float[] zeros, float[] scales, int[] group)
    {
        Config = config;
        OutFeatures = outFeatures;
        InFeatures = inFeatures;
        GroupSize = config.EffectiveGroupSize(inFeatures);
        Groups = config.Groups(inFeatures);
        if (codes.Length != (long)outFeatures * WordsPerRow || zeros.Length != (long)outFeatures * Groups
            || scales.Length != zeros.Length || group.Length != inFeatures)
            throw new ArgumentException("inconsistent packed weight arrays");
        _codes = codes; _zeros = zeros; _scales = scales; _group = group;
        for (int i = 0; i < inFeatures && !Permuted; i++) Permuted = group[i] != i / GroupSize;
    }

    /// <summary>The integer code of W[o, i] (tests and the reference check).</summary>
    public int Code(int o, int i) => (int)((_codes[(long)o * WordsPerRow + i / PerWord] >> (Bits * (i % PerWord))) & ((1u << Bits) - 1));

    /// <summary>The zero point (as the kernels use it, offset applied) and scale of output o, group g.</summary>
    public (float Zero, float Scale) GroupParams(int o, int g) => (_zeros[(long)o * Groups + g], _scales[(long)o * Groups + g]);

    /// <summary>The group of input channel i.</summary>
    public int GroupOf(int i) => _group[i];

    /// <summary>dst = W rows [row0, row0 + rows) as float32 (rows·In), parallel over rows for large requests;
    /// results do not depend on the thread count.</summary>
    public unsafe void DequantizeRows(ComputeContext ctx, int row0, int rows, Span<float> dst)
    {
        if (row0 < 0 || rows < 0 || row0 + rows > OutFeatures) throw new ArgumentOutOfRangeException(nameof(row0));
        long count = (long)rows * InFeatures;
        if (dst.Length < count) throw new ArgumentException($"dst has {dst.Length} elements, expected {count}");
        if (count < 1 << 15)
        {
            for (int r = 0; r < rows; r++) DequantizeRow(row0 + r, dst.Slice(r * InFeatures, InFeatures));
            return;
        }
        fixed (float* d = dst)
        {
            float* dp = d;
            int inF = InFeatures;
            ctx.For(rows, (r0, r1) =>
            {
                for (int r = r0; r < r1; r++) DequantizeRow(row0 + r, new Span<float>(dp + (long)r * inF, inF));
            }, Math.Max(1, (1 << 14) / Math.Max(1, inF)));
        }
    }

    void DequantizeRow(int o, Span<float> dst)
    {
        var words = _codes.AsSpan(o * WordsPerRow, WordsPerRow);
        var zeros = _zeros.AsSpan(o * Groups, Groups);
        var scales = _scales.AsSpan(o * Groups, Groups);
        int bits = Bits, per = PerWord, inF = InFeatures;
        int logPer = per == 8 ? 3 : 2;   // 4-bit: 8 codes per word, 8-bit: 4
        uint mask = (1u << bits) - 1;
        if (!Permuted && GroupSize % per == 0)
        {
            // contiguous groups of whole words: one zero and scale per run, a word's codes decoded in turn
            for (int g = 0, i0 = 0; g < Groups; g++, i0 += GroupSize)
            {
                float z = zeros[g], s = scales[g];
                int i1 = Math.Min(inF, i0 + GroupSize);
                for (int p = i0 >> logPer, i = i0; i < i1; p++)
                {
                    uint word = words[p];
                    for (int k = 0; k < per && i < i1; k++, i++, word >>= bits)
                        dst[i] = ((float)(word & mask) - z) * s;
                }
            }
            return;
        }
        var group = _group.AsSpan();
        for (int i = 0; i < inF; i++)
        {
            int g = group[i];
            dst[i] = ((float)((words[i >> logPer] >> (bits * (i & (per - 1)))) & mask) - zeros[g]) * scales[g];
        }
    }
}
