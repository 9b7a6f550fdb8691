using PeftSharp.Tests.TestSupport;
using PeftSharp.Kernels;
using PeftSharp.Kernels.Reference;
using static PeftSharp.Tests.Kernels.KernelCheck;
using static PeftSharp.Tests.TestSupport.Numerics;

namespace PeftSharp.Tests.Kernels;

/// <summary>Sliding-window attention (query i sees keys j with 0 ≤ i − j &lt; window, transformers' sliding_window_overlay):
/// tiled kernels against the float64 reference, the reference against finite differences, and cached decoding.</summary>
public class SlidingWindowAttentionTests
{
    public static TheoryData<int, int, int, int, int, bool, int> Shapes => new()
    {
        // batch, seqLen, Hq, Hkv, D, packed, window
        { 1, 7, 2, 2, 8, false, 1 },      // window 1: each token sees only itself
        { 1, 7, 2, 2, 8, false, 3 },
        { 2, 70, 4, 2, 16, false, 5 },    // window far inside one tile
        { 2, 70, 4, 2, 16, true, 17 },    // packed: segment and window both apply
        { 1, 200, 3, 1, 64, false, 64 },  // window = tile width: whole key tiles skipped
        { 1, 200, 3, 1, 64, true, 65 },
        { 1, 150, 2, 1, 20, false, 100 }, // window across tiles, D padded
        { 2, 65, 6, 2, 20, false, 1000 }, // window longer than the sequence = plain causal
    };

    static int[] PackedSegments(int batch, int T, Random rng)
    {
        var seg = new int[batch * T];
        for (int b = 0; b < batch; b++)
        {
            int cut1 = 1 + rng.Next(T - 1), cut2 = cut1 + rng.Next(T - cut1);
            for (int t = 0; t < T; t++) seg[b * T + t] = t < cut1 ? 0 : t < cut2 ? 1 : 2;
        }
        return seg;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_and_backward_match_float64_reference(int batch, int T, int hq, int hkv, int d, bool packed, int window)
    {
        var rng = new Random(batch * 7919 + T * 31 + window);
        int n = batch * T;
        var q = RandomFloats(rng, n * hq * d, 2f); var k = RandomFloats(rng, n * hkv * d, 2f); var v = RandomFloats(rng, n * hkv * d);
        var dout = RandomFloats(rng, n * hq * d);
        int[]? seg = packed ? PackedSegments(batch, T, rng) : null;
        var o = new float[n * hq * d]; var lse = new float[n * hq];
        Attention.Forward(TestCompute.Cpu, o, lse, q, k, v, seg, batch, T, hq, hkv, d, window);
        var (oRef, lseRef) = AttentionReference.Forward(ToDouble(q), ToDouble(k), ToDouble(v), seg, batch, T, hq, hkv, d, window);
        AssertClose(o, oRef, 1e-5, "windowed attention out");
        AssertClose(lse, lseRef, 1e-6, "windowed attention lse");

        var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
        Attention.Backward(TestCompute.Cpu, dq, dk, dv, dout, o, lse, q, k, v, seg, batch, T, hq, hkv, d, window);
        var (dqRef, dkRef, dvRef) = AttentionReference.Backward(ToDouble(dout), ToDouble(q), ToDouble(k), ToDouble(v), seg, batch, T, hq, hkv, d, window);
        if (window == 1)
        {
            // One visible key: softmax is exactly 1, so out = v of the token itself and q, k get no gradient
            // (up to float32 rounding of dP − rowsum(dO∘O), which are the same dot product computed two ways).
            Assert.All(dq, x => Assert.True(Math.Abs(x) < 1e-4, $"dq {x}"));
            Assert.All(dk, x => Assert.True(Math.Abs(x) < 1e-4, $"dk {x}"));
            for (int t = 0; t < n; t++)
                for (int h = 0; h < hq; h++)
                    for (int x = 0; x < d; x++) Assert.Equal(v[(t * hkv + h / (hq / hkv)) * d + x], o[(t * hq + h) * d + x], 6);
        }
        else
        {
            AssertClose(dq, dqRef, 1e-5, "windowed dq");
            AssertClose(dk, dkRef, 1e-5, "windowed dk");
        }
        AssertClose(dv, dvRef, 1e-5, "windowed dv");
    }

    [Fact]
    public void Window_changes_the_result_and_a_long_window_does_not()
    {
        int T = 90, hq = 2, hkv = 1, d = 8;
        var rng = new Random(5);
        var q = RandomFloats(rng, T * hq * d, 2f); var k = RandomFloats(rng, T * hkv * d, 2f); var v = RandomFloats(rng, T * hkv * d);
        float[] Run(int w)
        {
            var o = new float[T * hq * d]; var lse = new float[T * hq];
            Attention.Forward(TestCompute.Cpu, o, lse, q, k, v, default, 1, T, hq, hkv, d, w);
            return o;
        }
        var full = Run(0);
        Assert.Equal(full, Run(T));        // window = T: every causal key is inside it, bit-identical
        var windowed = Run(10);
        Assert.Equal(full.AsSpan(0, 10 * hq * d).ToArray(), windowed.AsSpan(0, 10 * hq * d).ToArray()); // first 10 tokens unaffected
        Assert.NotEqual(full.AsSpan(10 * hq * d, hq * d).ToArray(), windowed.AsSpan(10 * hq * d, hq * d).ToArray()); // token 10 loses key 0
    }

    [Fact]
    public void Negative_window_is_rejected()
    {
        var o = new float[16]; var lse = new float[2]; var x = new float[16];
        Assert.Throws<ArgumentException>(() => Attention.Forward(TestCompute.Cpu, o, lse, x, x, x, default, 1, 2, 1, 1, 8, -1));
    }

    [Theory]
    [InlineData(false, 2)]
    [InlineData(true, 2)]
    [InlineData(false, 4)]
    public void Reference_backward_matches_finite_differences(bool packed, int window)
    {
        int batch = 2, T = 5, hq = 4, hkv = 2, d = 3;
        var rng = new Random(40 + window);
        int n = batch * T;
        var q = RandomDoubles(rng, n * hq * d); var k = RandomDoubles(rng, n * hkv * d); var v = RandomDoubles(rng, n * hkv * d);
        var r = RandomDoubles(rng, n * hq * d);
        int[]? seg = packed ? [0, 0, 0, 1, 1, 4, 4, 4, 4, 5] : null;
        var (dq, dk, dv) = AttentionReference.Backward(r, q, k, v, seg, batch, T, hq, hkv, d, window);
        double Loss() => Dot(AttentionReference.Forward(q, k, v, seg, batch, T, hq, hkv, d, window).Out, r);
        AssertGradient(dq, Loss, q, "windowed attention dq");
        AssertGradient(dk, Loss, k, "windowed attention dk");
        AssertGradient(dv, Loss, v, "windowed attention dv");
    }

    [Theory]
    [InlineData(150, 40, 4, 2, 16, 7)]    // window shorter than the prefill
    [InlineData(150, 1, 3, 1, 64, 70)]    // window longer than one tile, decode from the first token
    [InlineData(140, 66, 2, 2, 8, 1000)]  // window longer than the sequence
    public void Cached_decoding_equals_full_forward_and_never_reads_outside_the_window(int T, int prefill, int hq, int hkv, int d, int window)
    {
        var rng = new Random(T + prefill + window);
        var q = RandomFloats(rng, T * hq * d, 2f); var k = RandomFloats(rng, T * hkv * d, 2f); var v = RandomFloats(rng, T * hkv * d);
        var full = new float[T * hq * d]; var lse = new float[T * hq];
        Attention.Forward(TestCompute.Cpu, full, lse, q, k, v, ReadOnlySpan<int>.Empty, 1, T, hq, hkv, d, window);

        int row = hkv * d, qRow = hq * d;
        var kCache = Enumerable.Repeat(float.NaN, T * row).ToArray();
        var vCache = (float[])kCache.Clone();
        var cached = new float[T * qRow];
        void Step(int start, int tNew)
        {
            Array.Copy(k, start * row, kCache, start * row, tNew * row);
            Array.Copy(v, start * row, vCache, start * row, tNew * row);
            Attention.ForwardCached(TestCompute.Cpu, cached.AsSpan(start * qRow, tNew * qRow), q.AsSpan(start * qRow, tNew * qRow), kCache, vCache, start, tNew, hq, hkv, d, window);
            // Positions that left every later query's window are poisoned: a read of them would turn the output into NaN.
            int stale = start + tNew - window + 1; // the next query, at start + tNew, sees from start + tNew − window + 1
            if (stale > 0) { Array.Fill(kCache, float.NaN, 0, stale * row); Array.Fill(vCache, float.NaN, 0, stale * row); }
        }
        Step(0, prefill);
        for (int t = prefill; t < T; t++) Step(t, 1);
        AssertClose(cached, ToDouble(full), 1e-5, "windowed prefill + decode vs full forward");
        var (oRef, _) = AttentionReference.Forward(ToDouble(q), ToDouble(k), ToDouble(v), null, 1, T, hq, hkv, d, window);
        AssertClose(cached, oRef, 1e-5, "windowed prefill + decode vs float64 reference");
    }
}
