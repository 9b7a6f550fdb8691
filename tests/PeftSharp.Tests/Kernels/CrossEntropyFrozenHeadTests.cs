using PeftSharp.Kernels;
using PeftSharp.Kernels.Reference;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Kernels;

/// <summary>The single-pass path used when the head is frozen (dhidden only, no dLmHead).</summary>
public unsafe class CrossEntropyFrozenHeadTests
{
    [Theory]
    [InlineData(7, 300, 16, 64, DType.F32)]    // several chunks, running max changes between chunks
    [InlineData(12, 257, 24, 300, DType.BF16)]  // one chunk bigger than the vocabulary
    [InlineData(5, 1000, 8, 128, DType.F16)]
    public void HiddenGradientOnly_MatchesReference(int n, int vocab, int c, int chunk, DType headType)
    {
        var rng = new Random(n * 31 + vocab);
        var h = Numerics.RandomFloats(rng, n * c, 2f);
        var w = Numerics.RandomFloats(rng, vocab * c, 1.5f);
        var targets = Enumerable.Range(0, n).Select(i => i % 4 == 1 ? -100 : rng.Next(vocab)).ToArray();
        using var head = new Tensor(headType, vocab, c);
        DTypeConvert.FromFloat(w, headType, head.Data);
        var stored = new float[vocab * c];
        DTypeConvert.ToFloat(head.Data, headType, stored);   // the reference sees the rounded head
        var dh = Numerics.RandomFloats(rng, n * c);          // non-zero: the kernel must add
        var dh0 = (float[])dh.Clone();
        var (loss, count) = CrossEntropy.ForwardBackward(TestCompute.Cpu, h, head.AsMatrix(), targets, n, c, 0.25f, dh, Span<float>.Empty, chunk);
        var r = CrossEntropyReference.ForwardBackward(h.Select(x => (double)x).ToArray(), stored.Select(x => (double)x).ToArray(), targets, n, c, vocab, 0.25);
        Assert.Equal(r.Count, count);
        Assert.Equal(r.LossSum, loss, 1e-3);
        var added = dh.Select((v, i) => v - dh0[i]).ToArray();
        Numerics.AssertClose(added, r.Dh, 1e-5, "dhidden (frozen head)");
    }
}
