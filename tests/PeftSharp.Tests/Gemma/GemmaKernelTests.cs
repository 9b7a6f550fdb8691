using PeftSharp.Kernels;
using PeftSharp.Kernels.Reference;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;
using static PeftSharp.Tests.Kernels.KernelCheck;
using static PeftSharp.Tests.TestSupport.Numerics;

namespace PeftSharp.Tests.Gemma;

/// <summary>
/// The Gemma-only operations against their float64 references, and each reference's backward against finite
/// differences: GeGLU with the tanh GELU, RMSNorm with the (1 + w) offset, attention logit soft-capping (training,
/// packing, windows, cached decoding) and final-logit soft-capping in the fused LM head + cross-entropy.
/// </summary>
public unsafe class GemmaKernelTests
{
    [Theory]
    [InlineData(13)]
    [InlineData(2500)]   // several 1024-element blocks and a ragged tail
    public void GeGlu_forward_and_backward_match_float64_reference(int len)
    {
        var rng = new Random(len);
        var g = RandomFloats(rng, len, 4f); var u = RandomFloats(rng, len, 2f); var dout = RandomFloats(rng, len);
        var o = new float[len];
        GeGlu.Forward(TestCompute.Cpu, o, g, u);
        AssertClose(o, GeGluReference.Forward(ToDouble(g), ToDouble(u)), 1e-6, "geglu out");
        var dg0 = RandomFloats(rng, len); var du0 = RandomFloats(rng, len);
        var dg = (float[])dg0.Clone(); var du = (float[])du0.Clone();
        GeGlu.Backward(TestCompute.Cpu, dg, du, dout, g, u);
        var (dgRef, duRef) = GeGluReference.Backward(ToDouble(dout), ToDouble(g), ToDouble(u));
        AssertClose(Added(dg, dg0), dgRef, 1e-5, "geglu dgate");
        AssertClose(Added(du, du0), duRef, 1e-5, "geglu dup");
        var only = new float[len];
        GeGlu.Backward(TestCompute.Cpu, only, Span<float>.Empty, dout, g, u);
        AssertClose(only, dgRef, 1e-5, "geglu dgate alone");
    }

    [Fact]
    public void GeGlu_reference_is_the_tanh_gelu_and_its_backward_matches_finite_differences()
    {
        // gelu_pytorch_tanh at a few points (0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))), and its limits
        Assert.Equal(0, GeGluReference.Gelu(0));
        Assert.Equal(0.8411919906082768, GeGluReference.Gelu(1), 12);
        Assert.Equal(-0.04540230591222, GeGluReference.Gelu(-2), 12);
        Assert.Equal(10, GeGluReference.Gelu(10), 9);
        var rng = new Random(6);
        int len = 9;
        var g = RandomDoubles(rng, len, 3); var u = RandomDoubles(rng, len); var r = RandomDoubles(rng, len);
        var (dg, du) = GeGluReference.Backward(r, g, u);
        double Loss() => Dot(GeGluReference.Forward(g, u), r);
        AssertGradient(dg, Loss, g, "geglu dgate");
        AssertGradient(du, Loss, u, "geglu dup");
    }

    [Theory]
    [InlineData(5, 37)]
    [InlineData(64, 256)]   // Gemma head_dim for the q/k norm; several threads and dweight partials
    public void RmsNorm_with_one_plus_w_matches_float64_reference(int n, int c)
    {
        const float eps = 1e-6f;
        var rng = new Random(n + c);
        var x = RandomFloats(rng, n * c, 2f); var w = RandomFloats(rng, c, 0.3f); var dy = RandomFloats(rng, n * c);
        var y = new float[n * c]; var rstd = new float[n];
        RmsNorm.Forward(TestCompute.Cpu, y, rstd, x, w, n, c, eps, weightOffset: 1);
        AssertClose(y, RmsNormReference.Forward(ToDouble(x), ToDouble(w), n, c, eps, offset: 1).Y, 1e-6, "gemma rmsnorm y");
        var dx0 = RandomFloats(rng, n * c); var dw0 = RandomFloats(rng, c);
        var dx = (float[])dx0.Clone(); var dw = (float[])dw0.Clone();
        RmsNorm.Backward(TestCompute.Cpu, dx, dw, dy, x, w, rstd, n, c, weightOffset: 1);
        var (dxRef, dwRef) = RmsNormReference.Backward(ToDouble(dy), ToDouble(x), ToDouble(w), n, c, eps, offset: 1);
        AssertClose(Added(dx, dx0), dxRef, 1e-5, "gemma rmsnorm dx");
        AssertClose(Added(dw, dw0), dwRef, 1e-5, "gemma rmsnorm dw");
        // w = 0 is the identity scale, exactly as Llama's w = 1
        var y0 = new float[n * c]; var y1 = new float[n * c];
        RmsNorm.Forward(TestCompute.Cpu, y0, rstd, x, new float[c], n, c, eps, weightOffset: 1);
        RmsNorm.Forward(TestCompute.Cpu, y1, rstd, x, Enumerable.Repeat(1f, c).ToArray(), n, c, eps);
        Assert.Equal(y1, y0);
    }

    [Fact]
    public void RmsNorm_offset_reference_backward_matches_finite_differences()
    {
        int n = 3, c = 5;
        var rng = new Random(10);
        var x = RandomDoubles(rng, n * c); var w = RandomDoubles(rng, c, 0.3); var r = RandomDoubles(rng, n * c);
        var (dx, dw) = RmsNormReference.Backward(r, x, w, n, c, 1e-6, offset: 1);
        double Loss() => Dot(RmsNormReference.Forward(x, w, n, c, 1e-6, offset: 1).Y, r);
        AssertGradient(dx, Loss, x, "(1+w) rmsnorm dx");
        AssertGradient(dw, Loss, w, "(1+w) rmsnorm dw");
    }

    static int[] Packed(int batch, int T)
    {
        var seg = new int[batch * T];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < T; t++) seg[b * T + t] = t < T / 3 + b ? 0 : 1;
        return seg;
    }

    public static TheoryData<int, int, int, int, int, bool, int, float> SoftcapShapes => new()
    {
        // batch, T, Hq, Hkv, D, packed, window, softcap
        { 1, 7, 2, 2, 8, false, 0, 1.5f },
        { 2, 70, 4, 2, 16, true, 0, 3f },     // two tiles, GQA, packing
        { 1, 130, 2, 1, 24, false, 40, 2f },  // three tiles, window shorter than the sequence
        { 2, 65, 3, 1, 8, true, 9, 50f },     // Gemma 2's cap: nearly no capping at this score size
    };

    [Theory]
    [MemberData(nameof(SoftcapShapes))]
    public void Softcapped_attention_forward_and_backward_match_float64_reference(int batch, int T, int hq, int hkv, int d, bool packed, int window, float cap)
    {
        var rng = new Random(batch * 1000 + T + d);
        int n = batch * T;
        // scores of several units, so tanh is well into its nonlinear range for caps 1.5 … 3
        var q = RandomFloats(rng, n * hq * d, 3f); var k = RandomFloats(rng, n * hkv * d, 3f); var v = RandomFloats(rng, n * hkv * d);
        var dout = RandomFloats(rng, n * hq * d);
        int[]? seg = packed ? Packed(batch, T) : null;
        var o = new float[n * hq * d]; var lse = new float[n * hq];
        Attention.Forward(TestCompute.Cpu, o, lse, q, k, v, seg, batch, T, hq, hkv, d, window, cap);
        var (oRef, lseRef) = AttentionReference.Forward(ToDouble(q), ToDouble(k), ToDouble(v), seg, batch, T, hq, hkv, d, window, cap);
        AssertClose(o, oRef, 1e-5, "softcapped attention out");
        AssertClose(lse, lseRef, 1e-6, "softcapped attention lse");
        var plain = new float[o.Length];
        Attention.Forward(TestCompute.Cpu, plain, new float[lse.Length], q, k, v, seg, batch, T, hq, hkv, d, window);
        if (cap < 10) Assert.True(RelativeError(plain, ToDouble(o)) > 1e-2, "the cap must change the result at this score size");

        var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
        Attention.Backward(TestCompute.Cpu, dq, dk, dv, dout, o, lse, q, k, v, seg, batch, T, hq, hkv, d, window, cap);
        var (dqRef, dkRef, dvRef) = AttentionReference.Backward(ToDouble(dout), ToDouble(q), ToDouble(k), ToDouble(v), seg, batch, T, hq, hkv, d, window, cap);
        AssertClose(dq, dqRef, 2e-5, "softcapped attention dq");
        AssertClose(dk, dkRef, 2e-5, "softcapped attention dk");
        AssertClose(dv, dvRef, 1e-5, "softcapped attention dv");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void Softcapped_cached_attention_matches_the_batch_kernel(int window)
    {
        var rng = new Random(77 + window);
        int T = 20, hq = 4, hkv = 2, d = 8;
        const float cap = 2f;
        var q = RandomFloats(rng, T * hq * d, 3f); var k = RandomFloats(rng, T * hkv * d, 3f); var v = RandomFloats(rng, T * hkv * d);
        var full = new float[T * hq * d];
        Attention.Forward(TestCompute.Cpu, full, new float[T * hq], q, k, v, null, 1, T, hq, hkv, d, window, cap);
        var inc = new float[T * hq * d];
        Attention.ForwardCached(TestCompute.Cpu, inc.AsSpan(0, 6 * hq * d), q.AsSpan(0, 6 * hq * d), k, v, 0, 6, hq, hkv, d, window, cap);
        for (int t = 6; t < T; t++)
            Attention.ForwardCached(TestCompute.Cpu, inc.AsSpan(t * hq * d, hq * d), q.AsSpan(t * hq * d, hq * d), k, v, t, 1, hq, hkv, d, window, cap);
        AssertClose(inc, ToDouble(full), 1e-6, "cached vs batch softcapped attention");
    }

    [Fact]
    public void Softcapped_attention_reference_backward_matches_finite_differences()
    {
        var rng = new Random(12);
        int T = 5, hq = 2, hkv = 1, d = 3;
        const double cap = 1.2;
        var q = RandomDoubles(rng, T * hq * d, 2); var k = RandomDoubles(rng, T * hkv * d, 2); var v = RandomDoubles(rng, T * hkv * d);
        var r = RandomDoubles(rng, T * hq * d);
        var (dq, dk, dv) = AttentionReference.Backward(r, q, k, v, null, 1, T, hq, hkv, d, 3, cap);
        double Loss() => Dot(AttentionReference.Forward(q, k, v, null, 1, T, hq, hkv, d, 3, cap).Out, r);
        AssertGradient(dq, Loss, q, "softcap attention dq");
        AssertGradient(dk, Loss, k, "softcap attention dk");
        AssertGradient(dv, Loss, v, "softcap attention dv");
    }

    [Theory]
    [InlineData(256, true)]    // two-pass path (trainable head), several chunks
    [InlineData(64, false)]    // frozen head: the one-pass path that accumulates dhidden online
    [InlineData(0, false)]
    public void Softcapped_cross_entropy_matches_float64_reference(int chunk, bool headGrad)
    {
        const int n = 9, c = 24, vocab = 1000;
        const float cap = 3f;
        int[] targets = [5, -100, 999, 0, 256, -100, 511, 255, 64];
        var rng = new Random(chunk + (headGrad ? 1 : 0));
        var h = RandomFloats(rng, n * c, 2f); var w = RandomFloats(rng, vocab * c);   // logits of several units: capped
        var dh0 = RandomFloats(rng, n * c); var dw0 = RandomFloats(rng, vocab * c);
        var dh = (float[])dh0.Clone(); var dw = (float[])dw0.Clone();
        (double loss, int count) = (0, 0);
        fixed (float* pw = w)
            (loss, count) = CrossEntropy.ForwardBackward(TestCompute.Cpu, h, MatrixView.F32(pw, vocab, c), targets, n, c, 0.37f, dh,
                headGrad ? dw : Span<float>.Empty, chunk, cap);
        var r = CrossEntropyReference.ForwardBackward(ToDouble(h), ToDouble(w), targets, n, c, vocab, 0.37, cap);
        var plain = CrossEntropyReference.ForwardBackward(ToDouble(h), ToDouble(w), targets, n, c, vocab, 0.37);
        Assert.True(Math.Abs(plain.LossSum - r.LossSum) > 0.1, "the cap must change the loss at this logit size");
        Assert.Equal(r.Count, count);
        Assert.True(Math.Abs(loss - r.LossSum) < 1e-6 * r.LossSum, $"loss {loss} vs reference {r.LossSum}");
        AssertClose(Added(dh, dh0), r.Dh, 1e-5, "softcapped dhidden");
        if (headGrad) AssertClose(Added(dw, dw0), r.Dw, 1e-5, "softcapped dLmHead");
        else Assert.Equal(dw0, dw);
    }

    [Fact]
    public void Softcapped_cross_entropy_reference_matches_finite_differences()
    {
        var rng = new Random(13);
        int n = 3, c = 4, vocab = 7;
        var h = RandomDoubles(rng, n * c, 2); var w = RandomDoubles(rng, vocab * c, 2);
        int[] targets = [3, -100, 6];
        var r = CrossEntropyReference.ForwardBackward(h, w, targets, n, c, vocab, 1, softcap: 1.5);
        double Loss() => CrossEntropyReference.ForwardBackward(h, w, targets, n, c, vocab, 1, softcap: 1.5).LossSum;
        AssertGradient(r.Dh, Loss, h, "softcap CE dhidden");
        AssertGradient(r.Dw, Loss, w, "softcap CE dLmHead");
    }
}
