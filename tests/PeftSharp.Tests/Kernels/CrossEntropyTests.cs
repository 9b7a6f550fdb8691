using PeftSharp.Tests.TestSupport;
using PeftSharp.Kernels;
using PeftSharp.Kernels.Reference;
using PeftSharp.Tensors;
using static PeftSharp.Tests.Kernels.KernelCheck;
using static PeftSharp.Tests.TestSupport.Numerics;

namespace PeftSharp.Tests.Kernels;

public unsafe class CrossEntropyTests
{
    const int N = 9, C = 24, V = 1000; // V not a multiple of the 256 chunk used below
    static readonly int[] Targets = [5, -100, 999, 0, 256, -100, 511, 255, -100];

    [Theory]
    [InlineData(256)]
    [InlineData(0)]   // the kernel's own chunk choice (whole vocabulary in one chunk here)
    public void Loss_and_gradients_match_float64_reference(int chunk)
    {
        var rng = new Random(40 + chunk);
        var h = RandomFloats(rng, N * C, 2f); var w = RandomFloats(rng, V * C);
        var dh0 = RandomFloats(rng, N * C); var dw0 = RandomFloats(rng, V * C);
        var dh = (float[])dh0.Clone(); var dw = (float[])dw0.Clone();
        float gradScale = 0.37f;
        (double loss, int count) = (0, 0);
        fixed (float* pw = w) (loss, count) = CrossEntropy.ForwardBackward(TestCompute.Cpu, h, MatrixView.F32(pw, V, C), Targets, N, C, gradScale, dh, dw, chunk);
        var r = CrossEntropyReference.ForwardBackward(ToDouble(h), ToDouble(w), Targets, N, C, V, gradScale);
        Assert.Equal(r.Count, count);
        Assert.True(Math.Abs(loss - r.LossSum) < 1e-6 * r.LossSum, $"loss {loss} vs reference {r.LossSum}");
        AssertClose(Added(dh, dh0), r.Dh, 1e-5, "dhidden");
        AssertClose(Added(dw, dw0), r.Dw, 1e-5, "dLmHead");
        // Ignored rows get no gradient at all.
        for (int x = 0; x < C; x++) Assert.Equal(dh0[1 * C + x], dh[1 * C + x]);
    }

    [Fact]
    public void Many_rows_split_across_threads()
    {
        var rng = new Random(44);
        int n = 40, c = 16, vocab = 300;
        var targets = Enumerable.Range(0, n).Select(i => i % 7 == 3 ? -100 : rng.Next(vocab)).ToArray();
        var h = RandomFloats(rng, n * c, 2f); var w = RandomFloats(rng, vocab * c);
        var dh = new float[n * c]; var dw = new float[vocab * c];
        (double loss, int count) = (0, 0);
        fixed (float* pw = w) (loss, count) = CrossEntropy.ForwardBackward(TestCompute.Cpu, h, MatrixView.F32(pw, vocab, c), targets, n, c, 1f / 34, dh, dw, 128);
        var r = CrossEntropyReference.ForwardBackward(ToDouble(h), ToDouble(w), targets, n, c, vocab, 1.0 / 34);
        Assert.Equal(r.Count, count);
        Assert.True(Math.Abs(loss - r.LossSum) < 1e-6 * r.LossSum, $"loss {loss} vs reference {r.LossSum}");
        AssertClose(dh, r.Dh, 1e-5, "dhidden, 40 rows");
        AssertClose(dw, r.Dw, 1e-5, "dLmHead, 40 rows");
    }

    [Fact]
    public void Loss_only_needs_no_gradient_buffers()
    {
        var rng = new Random(41);
        var h = RandomFloats(rng, N * C); var w = RandomFloats(rng, V * C);
        (double loss, int count) = (0, 0);
        fixed (float* pw = w) (loss, count) = CrossEntropy.ForwardBackward(TestCompute.Cpu, h, MatrixView.F32(pw, V, C), Targets, N, C, 1f, default, default, 128);
        var r = CrossEntropyReference.ForwardBackward(ToDouble(h), ToDouble(w), Targets, N, C, V, 1);
        Assert.Equal(6, count);
        Assert.True(Math.Abs(loss - r.LossSum) < 1e-6 * r.LossSum, $"loss {loss} vs reference {r.LossSum}");
    }

    [Fact]
    public void Bf16_head_matches_reference_on_the_stored_values()
    {
        var rng = new Random(42);
        int[] targets = [3, 77, -100, 299, 150];
        int n = targets.Length, vocab = 300;
        var h = RandomFloats(rng, n * C); var wf = RandomFloats(rng, vocab * C);
        var wb = Array.ConvertAll(wf, Bf16.FromFloat);
        var wStored = Array.ConvertAll(wb, b => (double)Bf16.ToFloat(b));
        var dh = new float[n * C]; var dw = new float[vocab * C];
        (double loss, int count) = (0, 0);
        fixed (ushort* pw = wb) (loss, count) = CrossEntropy.ForwardBackward(TestCompute.Cpu, h, new MatrixView(pw, DType.BF16, vocab, C, C), targets, n, C, 0.5f, dh, dw, 64);
        var r = CrossEntropyReference.ForwardBackward(ToDouble(h), wStored, targets, n, C, vocab, 0.5);
        Assert.Equal(4, count);
        Assert.True(Math.Abs(loss - r.LossSum) < 1e-6 * r.LossSum, $"loss {loss} vs reference {r.LossSum}");
        AssertClose(dh, r.Dh, 1e-5, "dhidden, BF16 head");
        AssertClose(dw, r.Dw, 1e-5, "dLmHead, BF16 head");
    }

    [Fact]
    public void All_targets_ignored_gives_zero_and_leaves_gradients()
    {
        var w = new float[V * C]; var h = new float[2 * C];
        var dh = Enumerable.Repeat(1f, 2 * C).ToArray();
        (double loss, int count) = (1, 1);
        fixed (float* pw = w) (loss, count) = CrossEntropy.ForwardBackward(TestCompute.Cpu, h, MatrixView.F32(pw, V, C), [-100, -100], 2, C, 1f, dh, default);
        Assert.Equal((0.0, 0), (loss, count));
        Assert.All(dh, x => Assert.Equal(1f, x));
    }

    [Fact]
    public void Target_outside_vocabulary_is_a_user_error()
    {
        var w = new float[V * C]; var h = new float[C];
        var ex = Assert.Throws<PeftException>(() => { fixed (float* pw = w) CrossEntropy.ForwardBackward(TestCompute.Cpu, h, MatrixView.F32(pw, V, C), [V], 1, C, 1f, default, default); });
        Assert.Contains($"target token id {V}", ex.Message);
    }

    [Fact]
    public void Reference_gradients_match_finite_differences()
    {
        var rng = new Random(43);
        int n = 3, c = 4, vocab = 7; int[] targets = [6, -100, 2];
        var h = RandomDoubles(rng, n * c); var w = RandomDoubles(rng, vocab * c);
        var r = CrossEntropyReference.ForwardBackward(h, w, targets, n, c, vocab, 1);
        double Loss() => CrossEntropyReference.ForwardBackward(h, w, targets, n, c, vocab, 1).LossSum;
        AssertGradient(r.Dh, Loss, h, "cross-entropy dhidden");
        AssertGradient(r.Dw, Loss, w, "cross-entropy dLmHead");
    }
}
