using PeftSharp.Tests.TestSupport;
using PeftSharp.Kernels;
using PeftSharp.Kernels.Reference;
using static PeftSharp.Tests.Kernels.KernelCheck;
using static PeftSharp.Tests.TestSupport.Numerics;

namespace PeftSharp.Tests.Kernels;

public class AttentionTests
{
    /// <summary>Two or three packed documents per row, contiguous, lengths varying by row.</summary>
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

    public static TheoryData<int, int, int, int, int, bool> Shapes => new()
    {
        // batch, seqLen, Hq, Hkv, D, packed
        { 1, 7, 2, 2, 8, false },     // one partial tile, GQA ratio 1
        { 2, 70, 4, 2, 16, false },   // seqLen not a multiple of 64, ratio 2
        { 2, 70, 4, 2, 16, true },
        { 1, 130, 3, 1, 64, false },  // three tiles, ratio 3, Llama head_dim
        { 1, 130, 3, 1, 64, true },
        { 2, 65, 6, 2, 20, true },    // D not a multiple of 8 (padded), ratio 3
        { 1, 40, 2, 1, 72, false },   // D > 64: one full 64-block plus a single vector
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_matches_float64_reference(int batch, int T, int hq, int hkv, int d, bool packed)
    {
        var rng = new Random(batch * 100000 + T * 1000 + hq * 100 + d);
        int n = batch * T;
        var q = RandomFloats(rng, n * hq * d, 2f); var k = RandomFloats(rng, n * hkv * d, 2f); var v = RandomFloats(rng, n * hkv * d);
        int[]? seg = packed ? PackedSegments(batch, T, rng) : null;
        var o = new float[n * hq * d]; var lse = new float[n * hq];
        Attention.Forward(TestCompute.Cpu, o, lse, q, k, v, seg, batch, T, hq, hkv, d);
        var (oRef, lseRef) = AttentionReference.Forward(ToDouble(q), ToDouble(k), ToDouble(v), seg, batch, T, hq, hkv, d);
        AssertClose(o, oRef, 1e-5, "attention out");
        AssertClose(lse, lseRef, 1e-6, "attention lse");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Backward_matches_float64_reference(int batch, int T, int hq, int hkv, int d, bool packed)
    {
        var rng = new Random(batch * 100000 + T * 1000 + hq * 100 + d + 1);
        int n = batch * T;
        var q = RandomFloats(rng, n * hq * d, 2f); var k = RandomFloats(rng, n * hkv * d, 2f); var v = RandomFloats(rng, n * hkv * d);
        var dout = RandomFloats(rng, n * hq * d);
        int[]? seg = packed ? PackedSegments(batch, T, rng) : null;
        var o = new float[n * hq * d]; var lse = new float[n * hq];
        Attention.Forward(TestCompute.Cpu, o, lse, q, k, v, seg, batch, T, hq, hkv, d);
        var dq0 = RandomFloats(rng, q.Length); var dk0 = RandomFloats(rng, k.Length); var dv0 = RandomFloats(rng, v.Length);
        var dq = (float[])dq0.Clone(); var dk = (float[])dk0.Clone(); var dv = (float[])dv0.Clone();
        Attention.Backward(TestCompute.Cpu, dq, dk, dv, dout, o, lse, q, k, v, seg, batch, T, hq, hkv, d);
        var (dqRef, dkRef, dvRef) = AttentionReference.Backward(ToDouble(dout), ToDouble(q), ToDouble(k), ToDouble(v), seg, batch, T, hq, hkv, d);
        // 1e-5 bound on the increments: dk/dv sum over up to T queries × ratio heads in float32.
        AssertClose(Added(dq, dq0), dqRef, 1e-5, "attention dq");
        AssertClose(Added(dk, dk0), dkRef, 1e-5, "attention dk");
        AssertClose(Added(dv, dv0), dvRef, 1e-5, "attention dv");
    }

    [Fact]
    public void Non_contiguous_segment_ids_follow_the_equality_rule()
    {
        // Segment 0 reappears after segment 1: token 5 still attends tokens 0,1 (same id, earlier).
        int T = 8, hq = 2, hkv = 1, d = 8;
        int[] seg = [0, 0, 1, 1, 1, 0, 0, 1];
        var rng = new Random(21);
        var q = RandomFloats(rng, T * hq * d, 2f); var k = RandomFloats(rng, T * hkv * d, 2f); var v = RandomFloats(rng, T * hkv * d);
        var dout = RandomFloats(rng, T * hq * d);
        var o = new float[T * hq * d]; var lse = new float[T * hq];
        Attention.Forward(TestCompute.Cpu, o, lse, q, k, v, seg, 1, T, hq, hkv, d);
        var (oRef, _) = AttentionReference.Forward(ToDouble(q), ToDouble(k), ToDouble(v), seg, 1, T, hq, hkv, d);
        AssertClose(o, oRef, 1e-5, "attention out, non-contiguous segments");
        var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
        Attention.Backward(TestCompute.Cpu, dq, dk, dv, dout, o, lse, q, k, v, seg, 1, T, hq, hkv, d);
        var (dqRef, dkRef, dvRef) = AttentionReference.Backward(ToDouble(dout), ToDouble(q), ToDouble(k), ToDouble(v), seg, 1, T, hq, hkv, d);
        AssertClose(dq, dqRef, 1e-5, "dq"); AssertClose(dk, dkRef, 1e-5, "dk"); AssertClose(dv, dvRef, 1e-5, "dv");
    }

    [Fact]
    public void Packed_segments_do_not_see_each_other()
    {
        int T = 100, hq = 4, hkv = 2, d = 16, cut = 45; // segment 1 = tokens 0…44, segment 2 = 45…99 (crosses a tile)
        var seg = Enumerable.Range(0, T).Select(t => t < cut ? 1 : 2).ToArray();
        var rng = new Random(22);
        var q = RandomFloats(rng, T * hq * d); var k = RandomFloats(rng, T * hkv * d); var v = RandomFloats(rng, T * hkv * d);
        var o1 = new float[T * hq * d]; var lse1 = new float[T * hq];
        Attention.Forward(TestCompute.Cpu, o1, lse1, q, k, v, seg, 1, T, hq, hkv, d);

        // Change token 10 (segment 1) in q, k and v.
        for (int x = 0; x < hq * d; x++) q[10 * hq * d + x] += 0.5f;
        for (int x = 0; x < hkv * d; x++) { k[10 * hkv * d + x] -= 0.7f; v[10 * hkv * d + x] += 0.9f; }
        var o2 = new float[T * hq * d]; var lse2 = new float[T * hq];
        Attention.Forward(TestCompute.Cpu, o2, lse2, q, k, v, seg, 1, T, hq, hkv, d);

        int from = cut * hq * d;
        Assert.Equal(o1.AsSpan(from).ToArray(), o2.AsSpan(from).ToArray()); // segment 2 bit-identical
        Assert.Equal(lse1.AsSpan(cut * hq).ToArray(), lse2.AsSpan(cut * hq).ToArray());
        Assert.NotEqual(o1.AsSpan(10 * hq * d, hq * d).ToArray(), o2.AsSpan(10 * hq * d, hq * d).ToArray()); // segment 1 did change
    }

    [Theory]
    [InlineData(70, 40, 4, 2, 16)]
    [InlineData(67, 1, 3, 1, 64)]  // decode from the first token
    [InlineData(140, 66, 2, 2, 8)] // prefill longer than one tile
    public void Cached_prefill_then_decode_equals_full_forward(int T, int prefill, int hq, int hkv, int d)
    {
        var rng = new Random(T + prefill);
        var q = RandomFloats(rng, T * hq * d, 2f); var k = RandomFloats(rng, T * hkv * d, 2f); var v = RandomFloats(rng, T * hkv * d);
        var full = new float[T * hq * d]; var lse = new float[T * hq];
        Attention.Forward(TestCompute.Cpu, full, lse, q, k, v, ReadOnlySpan<int>.Empty, 1, T, hq, hkv, d);

        // The cache holds NaN beyond the filled rows: reading past start+tNew would poison the output.
        var kCache = Enumerable.Repeat(float.NaN, T * hkv * d).ToArray();
        var vCache = (float[])kCache.Clone();
        var cached = new float[T * hq * d];
        int row = hkv * d, qRow = hq * d;
        void Step(int start, int tNew)
        {
            Array.Copy(k, start * row, kCache, start * row, tNew * row);
            Array.Copy(v, start * row, vCache, start * row, tNew * row);
            Attention.ForwardCached(TestCompute.Cpu, cached.AsSpan(start * qRow, tNew * qRow), q.AsSpan(start * qRow, tNew * qRow), kCache, vCache, start, tNew, hq, hkv, d);
        }
        Step(0, prefill);
        for (int t = prefill; t < T; t++) Step(t, 1);
        AssertClose(cached, ToDouble(full), 1e-5, "prefill + decode vs full forward");
        var (oRef, _) = AttentionReference.Forward(ToDouble(q), ToDouble(k), ToDouble(v), null, 1, T, hq, hkv, d);
        AssertClose(cached, oRef, 1e-5, "prefill + decode vs float64 reference");
    }

    [Fact]
    public void Large_scores_stay_stable_through_the_online_softmax()
    {
        // Scores up to ~±40 after scaling: the running max is rescaled many times across tiles.
        int batch = 1, T = 150, hq = 2, hkv = 1, d = 32;
        var rng = new Random(23);
        var q = RandomFloats(rng, T * hq * d, 6f); var k = RandomFloats(rng, T * hkv * d, 6f); var v = RandomFloats(rng, T * hkv * d);
        var dout = RandomFloats(rng, T * hq * d);
        var o = new float[q.Length]; var lse = new float[T * hq];
        Attention.Forward(TestCompute.Cpu, o, lse, q, k, v, default, batch, T, hq, hkv, d);
        var (oRef, lseRef) = AttentionReference.Forward(ToDouble(q), ToDouble(k), ToDouble(v), null, batch, T, hq, hkv, d);
        AssertClose(o, oRef, 1e-5, "attention out, large scores");
        AssertClose(lse, lseRef, 1e-6, "attention lse, large scores");
        var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
        Attention.Backward(TestCompute.Cpu, dq, dk, dv, dout, o, lse, q, k, v, default, batch, T, hq, hkv, d);
        var (dqRef, dkRef, dvRef) = AttentionReference.Backward(ToDouble(dout), ToDouble(q), ToDouble(k), ToDouble(v), null, batch, T, hq, hkv, d);
        AssertClose(dq, dqRef, 1e-5, "dq, large scores"); AssertClose(dk, dkRef, 1e-5, "dk, large scores"); AssertClose(dv, dvRef, 1e-5, "dv, large scores");
    }

    [Fact]
    public void Backward_is_bitwise_repeatable()
    {
        // One (row, kv head) pair: the key tiles are split across tasks with dq partials, the racy-looking path.
        int batch = 1, T = 200, hq = 3, hkv = 1, d = 16;
        var rng = new Random(25);
        var q = RandomFloats(rng, T * hq * d); var k = RandomFloats(rng, T * hkv * d); var v = RandomFloats(rng, T * hkv * d);
        var dout = RandomFloats(rng, T * hq * d);
        var o = new float[q.Length]; var lse = new float[T * hq];
        Attention.Forward(TestCompute.Cpu, o, lse, q, k, v, default, batch, T, hq, hkv, d);
        float[][] Run()
        {
            var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
            Attention.Backward(TestCompute.Cpu, dq, dk, dv, dout, o, lse, q, k, v, default, batch, T, hq, hkv, d);
            return [dq, dk, dv];
        }
        var first = Run();
        for (int rep = 0; rep < 3; rep++)
        {
            var again = Run();
            for (int i = 0; i < 3; i++) Assert.Equal(first[i], again[i]);
        }
        var (dqRef, _, _) = AttentionReference.Backward(ToDouble(dout), ToDouble(q), ToDouble(k), ToDouble(v), null, batch, T, hq, hkv, d);
        AssertClose(first[0], dqRef, 1e-5, "dq");
    }

    [Fact]
    public void Backward_skips_gradients_that_are_not_needed()
    {
        int batch = 1, T = 70, hq = 4, hkv = 2, d = 16;
        var rng = new Random(24);
        var q = RandomFloats(rng, T * hq * d); var k = RandomFloats(rng, T * hkv * d); var v = RandomFloats(rng, T * hkv * d);
        var dout = RandomFloats(rng, T * hq * d);
        var o = new float[q.Length]; var lse = new float[T * hq];
        Attention.Forward(TestCompute.Cpu, o, lse, q, k, v, default, batch, T, hq, hkv, d);
        var dq = new float[q.Length]; var dv = new float[v.Length];
        Attention.Backward(TestCompute.Cpu, dq, default, dv, dout, o, lse, q, k, v, default, batch, T, hq, hkv, d);
        var (dqRef, _, dvRef) = AttentionReference.Backward(ToDouble(dout), ToDouble(q), ToDouble(k), ToDouble(v), null, batch, T, hq, hkv, d);
        AssertClose(dq, dqRef, 1e-5, "dq without dk"); AssertClose(dv, dvRef, 1e-5, "dv without dk");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reference_backward_matches_finite_differences(bool packed)
    {
        int batch = 2, T = 5, hq = 4, hkv = 2, d = 3;
        var rng = new Random(packed ? 31 : 30);
        int n = batch * T;
        var q = RandomDoubles(rng, n * hq * d); var k = RandomDoubles(rng, n * hkv * d); var v = RandomDoubles(rng, n * hkv * d);
        var r = RandomDoubles(rng, n * hq * d);
        int[]? seg = packed ? [0, 0, 1, 1, 1, 4, 4, 4, 5, 5] : null;
        var (dq, dk, dv) = AttentionReference.Backward(r, q, k, v, seg, batch, T, hq, hkv, d);
        double Loss() => Dot(AttentionReference.Forward(q, k, v, seg, batch, T, hq, hkv, d).Out, r);
        AssertGradient(dq, Loss, q, "attention dq");
        AssertGradient(dk, Loss, k, "attention dk");
        AssertGradient(dv, Loss, v, "attention dv");
    }
}
