using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace PeftSharp.Quantization;

/// <summary>
/// bitsandbytes' 8-bit "dynamic tree" code (create_dynamic_map): 256 sorted float32 values. For exponent step
/// i = 0 … maxExponentBits−1, take F = 2^(i + 7 − maxExponentBits) + 1 points (signed) or 2^(i + 8 − maxExponentBits) + 1
/// points (unsigned) of linspace(0.1, 1, F) in float32, the float32 means of adjacent points, times 10^(i − maxExponentBits + 1)
/// (as float32), plus their negations when signed; then 0 and 1.0, zero padding to 256, sort.
/// Signed: min −0.99296875, max 1.0, one 0. Unsigned: 0 … 1.0.
/// </summary>
internal static class DynamicMap
{
    public static readonly float[] Signed = Create(signed: true);
    public static readonly float[] Unsigned = Create(signed: false);

    public static float[] Create(bool signed, int maxExponentBits = 7, int totalBits = 8)
    {
        if (totalBits < 2 || totalBits > 8) throw new ArgumentOutOfRangeException(nameof(totalBits));
        if (maxExponentBits < 1 || maxExponentBits > totalBits - 1) throw new ArgumentOutOfRangeException(nameof(maxExponentBits));
        var data = new List<float>(256);
        int nonSignBits = totalBits - 1; // bitsandbytes uses total_bits − 1 for both variants
        int additionalItems = (1 << (nonSignBits - maxExponentBits)) - 1;
        for (int i = 0; i < maxExponentBits; i++)
        {
            int fractionItems = signed
                ? (1 << (i + nonSignBits - maxExponentBits)) + 1
                : (1 << (i + nonSignBits - maxExponentBits + 1)) + 1;
            AddMeans(data, fractionItems, Math.Pow(10, -(maxExponentBits - 1) + i), signed);
        }
        if (additionalItems > 0)
            AddMeans(data, additionalItems + 1, Math.Pow(10, -(maxExponentBits - 1) + maxExponentBits - 1), signed);
        data.Add(0f);
        data.Add(1.0f);
        if (data.Count != 1 << totalBits)
            throw new ArgumentException($"create_dynamic_map(signed={signed}, max_exponent_bits={maxExponentBits}, total_bits={totalBits}) gives {data.Count} values, not {1 << totalBits} (bitsandbytes asserts the same)");
        while (data.Count < 256) data.Add(0f);
        data.Sort();
        return [.. data];
    }

    // Each value is the defining formula 10^e · (b[k] + b[k+1])/2 with b = linspace(0.1, 1, points), evaluated in
    // float64 and rounded once to float32. bitsandbytes evaluates it with torch float32 ops, whose last-ulp results
    // depend on torch's vectorized linspace kernel; the values agree to ≤ 2 ulp (test against a dump of the real map).
    // Checkpoints carry their own map (nested_quant_map), which the loader uses as stored.
    static void AddMeans(List<float> data, int points, double scale, bool signed)
    {
        double step = 0.9 / (points - 1);
        for (int k = 0; k + 1 < points; k++)
        {
            double mean = ((0.1 + step * k) + (0.1 + step * (k + 1))) / 2.0;
            data.Add((float)(scale * mean));
            if (signed) data.Add((float)(-scale * mean));
        }
    }

    /// <summary>
    /// Index of the map entry nearest to x, by bitsandbytes' 8-bit binary search (kernels.cu dQuantize / quantize_2D):
    /// seven halving steps from pivot 127 keep code[lower] &lt; x ≤ code[upper], then x is compared with the float32
    /// midpoint to the neighbour on its side. On an exact midpoint the result is the pivot the search ended on.
    /// </summary>
    public static byte Nearest(ReadOnlySpan<float> map, float x)
    {
        int pivot = 127, upperPivot = 255, lowerPivot = 0;
        float lower = map[0], upper = map[255];
        float val = map[pivot];
        for (int i = 64; i > 0; i >>= 1)
        {
            if (x > val) { lowerPivot = pivot; lower = val; pivot += i; }
            else { upperPivot = pivot; upper = val; pivot -= i; }
            val = map[pivot];
        }
        if (x > val)
        {
            float mid = (upper + val) * 0.5f;
            return (byte)(x > mid ? upperPivot : pivot);
        }
        else
        {
            float mid = (lower + val) * 0.5f;
            return (byte)(x < mid ? lowerPivot : pivot);
        }
    }

    /// <summary>
    /// Eight lanes of <see cref="Nearest"/> at once (AVX2 gathers), the same comparisons in the same order, so the result
    /// equals the scalar search lane by lane (NaN lanes included).
    /// </summary>
    public static unsafe Vector256<int> NearestAvx2(float* map, Vector256<float> x)
    {
        var pivot = Vector256.Create(127);
        var upperPivot = Vector256.Create(255);
        var lowerPivot = Vector256<int>.Zero;
        var lower = Vector256.Create(map[0]);
        var upper = Vector256.Create(map[255]);
        var val = Avx2.GatherVector256(map, pivot, 4);
        for (int i = 64; i > 0; i >>= 1)
        {
            var gt = Avx.CompareGreaterThan(x, val);
            var gti = gt.AsInt32();
            lowerPivot = Avx2.BlendVariable(lowerPivot.AsByte(), pivot.AsByte(), gti.AsByte()).AsInt32();
            lower = Avx.BlendVariable(lower, val, gt);
            upperPivot = Avx2.BlendVariable(pivot.AsByte(), upperPivot.AsByte(), gti.AsByte()).AsInt32();
            upper = Avx.BlendVariable(val, upper, gt);
            // pivot += gt ? i : −i
            var step = Vector256.Create(i);
            pivot = Avx2.BlendVariable((pivot - step).AsByte(), (pivot + step).AsByte(), gti.AsByte()).AsInt32();
            val = Avx2.GatherVector256(map, pivot, 4);
        }
        var half = Vector256.Create(0.5f);
        var above = Avx.CompareGreaterThan(x, val).AsInt32();
        var resAbove = Avx2.BlendVariable(pivot.AsByte(), upperPivot.AsByte(),
            Avx.CompareGreaterThan(x, (upper + val) * half).AsByte()).AsInt32();
        var resBelow = Avx2.BlendVariable(pivot.AsByte(), lowerPivot.AsByte(),
            Avx.CompareLessThan(x, (lower + val) * half).AsByte()).AsInt32();
        return Avx2.BlendVariable(resBelow.AsByte(), resAbove.AsByte(), above.AsByte()).AsInt32();
    }
}
