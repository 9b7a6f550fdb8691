using PeftSharp.Quantization;

namespace PeftSharp.Tests.Quantization;

public class DynamicMapTests
{
    // The 128 non-positive entries of bitsandbytes' create_dynamic_map(signed=True) as a float32 dump printed in
    // decimal (a public third-party dump of the real function's output; used as test data only). The positive half
    // is the exact mirror plus 1.0.
    static readonly double[] SignedNegativeHalf =
    [
    -0.992968738079071, -0.9789062738418579, -0.96484375, -0.9507812261581421,
    -0.936718761920929, -0.922656238079071, -0.9085937738418579, -0.89453125,
    -0.8804687261581421, -0.866406261920929, -0.852343738079071, -0.8382812738418579,
    -0.82421875, -0.8101562261581421, -0.796093761920929, -0.782031238079071,
    -0.7679687738418579, -0.75390625, -0.7398437261581421, -0.725781261920929,
    -0.711718738079071, -0.6976562738418579, -0.68359375, -0.6695312261581421,
    -0.655468761920929, -0.641406238079071, -0.6273437738418579, -0.61328125,
    -0.5992187261581421, -0.585156261920929, -0.571093738079071, -0.5570312738418579,
    -0.54296875, -0.5289062261581421, -0.514843761920929, -0.500781238079071,
    -0.4867187738418579, -0.47265625, -0.4585937261581421, -0.44453126192092896,
    -0.43046873807907104, -0.4164062738418579, -0.40234375, -0.3882812261581421,
    -0.37421876192092896, -0.36015623807907104, -0.3460937738418579, -0.33203125,
    -0.3179687261581421, -0.30390626192092896, -0.28984373807907104, -0.2757812738418579,
    -0.26171875, -0.24765624105930328, -0.23359374701976776, -0.21953125298023224,
    -0.20546874403953552, -0.19140625, -0.17734375596046448, -0.16328124701976776,
    -0.14921875298023224, -0.13515624403953552, -0.12109375, -0.10703125596046448,
    -0.09859374910593033, -0.09578125178813934, -0.09296874701976776, -0.09015624970197678,
    -0.08734375238418579, -0.08453124761581421, -0.08171875029802322, -0.07890625298023224,
    -0.07609374821186066, -0.07328125089406967, -0.07046875357627869, -0.0676562488079071,
    -0.06484375149011612, -0.06203124672174454, -0.05921874940395355, -0.05640625208616257,
    -0.053593751043081284, -0.05078125, -0.047968748956918716, -0.04515624791383743,
    -0.04234375059604645, -0.039531249552965164, -0.03671874850988388, -0.033906251192092896,
    -0.031093750149011612, -0.028281250968575478, -0.025468749925494194, -0.02265625074505806,
    -0.019843749701976776, -0.017031250521540642, -0.014218749478459358, -0.011406250298023224,
    -0.009718749672174454, -0.009156250394880772, -0.008593750186264515, -0.008031249977648258,
    -0.0074687497690320015, -0.006906250026077032, -0.006343750283122063, -0.005781250074505806,
    -0.005218749865889549, -0.00465625012293458, -0.004093749914318323, -0.00353124993853271,
    -0.002968749962747097, -0.002406249986961484, -0.001843750011175871, -0.0012812500353902578,
    -0.0009437499684281647, -0.0008312499849125743, -0.0007187500013969839, -0.0006062500178813934,
    -0.000493750034365803, -0.00038124999264255166, -0.00026875000912696123, -0.00015624999650754035,
    -8.874999912222847e-05, -6.625000241911039e-05, -4.374999844003469e-05, -2.1249999917927198e-05,
    -7.749999895168003e-06, -3.2499999633728294e-06, -5.499999815583578e-07, 0.0,
    ];

    [Fact]
    public void Signed_map_matches_bitsandbytes_dump_to_two_ulp()
    {
        // torch evaluates the map in float32 (vectorized linspace), so the last ulp is platform-dependent; we
        // evaluate the formula in float64 and round once. Both agree to ≤ 2 ulp on every entry.
        var map = DynamicMap.Signed;
        Assert.Equal(256, map.Length);
        int maxUlp = 0;
        for (int k = 0; k < 128; k++)
        {
            float g = (float)SignedNegativeHalf[k];
            maxUlp = Math.Max(maxUlp, Math.Abs(BitConverter.SingleToInt32Bits(g) - BitConverter.SingleToInt32Bits(map[k])));
            if (k < 127) Assert.Equal(-map[k], map[254 - k]);
        }
        Assert.True(maxUlp <= 2, $"max ulp distance {maxUlp}");
        Assert.Equal((float)SignedNegativeHalf[0], map[0]);
        Assert.Equal(1.0f, map[255]);
    }

    [Fact]
    public void Signed_map_has_stated_properties()
    {
        var map = DynamicMap.Create(signed: true);
        Assert.Equal(256, map.Length);
        for (int k = 1; k < 256; k++) Assert.True(map[k - 1] < map[k], $"not strictly increasing at {k}");
        Assert.Equal(-0.99296875f, map[0]);
        Assert.Equal(1.0f, map[255]);
        Assert.Single(map, v => v == 0f);
        Assert.Equal(0f, map[127]);
    }

    [Fact]
    public void Unsigned_map_has_stated_properties()
    {
        var map = DynamicMap.Create(signed: false);
        Assert.Equal(256, map.Length);
        for (int k = 1; k < 256; k++) Assert.True(map[k - 1] < map[k], $"not strictly increasing at {k}");
        Assert.Equal(0f, map[0]);
        Assert.Equal(1.0f, map[255]);
        Assert.All(map, v => Assert.True(v >= 0));
        // Unsigned: twice the fraction points per exponent; the largest mean below 1 is (1 + (1 − 0.9/128))/2.
        Assert.Equal((float)(1.0 - 0.9 / 128 / 2), map[254], 6);
        // Smallest positive value: 1e-6 · (0.1 + 0.55)/2 (two fraction points at exponent 0 → means 0.325, 0.775).
        Assert.Equal(1e-6f * 0.325f, map[1], 12);
    }

    [Theory]
    [InlineData(true, 5)]
    [InlineData(true, 6)]
    public void Other_exponent_widths_fill_256_sorted_values(bool signed, int maxExp)
    {
        var map = DynamicMap.Create(signed, maxExp);
        Assert.Equal(256, map.Length);
        for (int k = 1; k < 256; k++) Assert.True(map[k - 1] <= map[k]);
        Assert.Equal(1f, map[255]);
        // the smallest magnitude is 10^−(maxExp−1) times the first mean of the coarsest linspace
        Assert.Contains(map, v => v > 0 && v < Math.Pow(10, -(maxExp - 1)));
    }

    [Fact]
    public void Combinations_bitsandbytes_rejects_are_rejected()
        => Assert.Throws<ArgumentException>(() => DynamicMap.Create(signed: false, maxExponentBits: 4));

    [Fact]
    public void Nearest_returns_the_closest_entry_for_every_entry_and_midpoint_neighbourhood()
    {
        foreach (var map in new[] { DynamicMap.Signed, DynamicMap.Unsigned })
        {
            for (int k = 0; k < 256; k++) Assert.Equal(k, DynamicMap.Nearest(map, map[k]));
            for (int k = 0; k + 1 < 256; k++)
            {
                float mid = (map[k] + map[k + 1]) * 0.5f;
                Assert.Equal(k, DynamicMap.Nearest(map, MathF.BitDecrement(mid)));
                Assert.Equal(k + 1, DynamicMap.Nearest(map, MathF.BitIncrement(mid)));
                int onMid = DynamicMap.Nearest(map, mid);
                Assert.True(onMid == k || onMid == k + 1);
            }
            Assert.Equal(255, DynamicMap.Nearest(map, 1.0f));
            Assert.Equal(0, DynamicMap.Nearest(map, -1.0f));
        }
    }

    [Fact]
    public void Nearest_matches_brute_force_on_random_values()
    {
        var rng = new Random(3);
        var map = DynamicMap.Signed;
        for (int t = 0; t < 20000; t++)
        {
            float x = (float)(rng.NextDouble() * 2 - 1) * (t % 3 == 0 ? 0.01f : 1f);
            int best = 0;
            for (int k = 1; k < 256; k++) if (MathF.Abs(map[k] - x) < MathF.Abs(map[best] - x)) best = k;
            int got = DynamicMap.Nearest(map, x);
            Assert.True(got == best || MathF.Abs(map[got] - x) == MathF.Abs(map[best] - x), $"x={x}: got {got}, nearest {best}");
        }
    }

    [Fact]
    public unsafe void Avx2_search_equals_the_scalar_search_lane_by_lane()
    {
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) return;
        var rng = new Random(17);
        foreach (var map in new[] { DynamicMap.Signed, DynamicMap.Unsigned })
        {
            var xs = new List<float> { float.NaN, -1f, 1f, 0f, -0f, 2f, -2f, 1e-30f, -1e-30f };
            for (int k = 0; k < 256; k++)
            {
                xs.Add(map[k]);
                if (k < 255) { float mid = (map[k] + map[k + 1]) * 0.5f; xs.Add(mid); xs.Add(MathF.BitIncrement(mid)); xs.Add(MathF.BitDecrement(mid)); }
            }
            for (int t = 0; t < 4000; t++) xs.Add((float)(rng.NextDouble() * 2 - 1) * (t % 2 == 0 ? 1f : 0.001f));
            while (xs.Count % 8 != 0) xs.Add(0.5f);
            var arr = xs.ToArray();
            fixed (float* m = map)
            fixed (float* px = arr)
                for (int i = 0; i < arr.Length; i += 8)
                {
                    var got = DynamicMap.NearestAvx2(m, System.Runtime.Intrinsics.Vector256.Load(px + i));
                    for (int l = 0; l < 8; l++)
                        Assert.True(DynamicMap.Nearest(map, arr[i + l]) == got[l], $"x={arr[i + l]}");
                }
        }
    }
}
