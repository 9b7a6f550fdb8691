using PeftSharp.Tests.TestSupport;
using PeftSharp.Kernels;
using PeftSharp.Kernels.Reference;
using static PeftSharp.Tests.Kernels.KernelCheck;
using static PeftSharp.Tests.TestSupport.Numerics;

namespace PeftSharp.Tests.Kernels;

public class SwiGluTests
{
    [Theory]
    [InlineData(13)]
    [InlineData(2500)] // several 1024-element blocks and a ragged tail
    public void Forward_and_backward_match_float64_reference(int len)
    {
        var rng = new Random(len);
        var g = RandomFloats(rng, len, 4f); var u = RandomFloats(rng, len, 2f); var dout = RandomFloats(rng, len);
        var o = new float[len];
        SwiGlu.Forward(TestCompute.Cpu, o, g, u);
        AssertClose(o, SwiGluReference.Forward(ToDouble(g), ToDouble(u)), 1e-6, "swiglu out");

        var dg0 = RandomFloats(rng, len); var du0 = RandomFloats(rng, len);
        var dg = (float[])dg0.Clone(); var du = (float[])du0.Clone();
        SwiGlu.Backward(TestCompute.Cpu, dg, du, dout, g, u);
        var (dgRef, duRef) = SwiGluReference.Backward(ToDouble(dout), ToDouble(g), ToDouble(u));
        AssertClose(Added(dg, dg0), dgRef, 1e-5, "swiglu dgate");
        AssertClose(Added(du, du0), duRef, 1e-5, "swiglu dup");
    }

    [Fact]
    public void Backward_with_only_dgate()
    {
        var rng = new Random(5);
        int len = 40;
        var g = RandomFloats(rng, len, 3f); var u = RandomFloats(rng, len); var dout = RandomFloats(rng, len);
        var dg = new float[len];
        SwiGlu.Backward(TestCompute.Cpu, dg, Span<float>.Empty, dout, g, u);
        AssertClose(dg, SwiGluReference.Backward(ToDouble(dout), ToDouble(g), ToDouble(u)).Dgate, 1e-5, "swiglu dgate alone");
    }

    [Fact]
    public void Reference_backward_matches_finite_differences()
    {
        var rng = new Random(6);
        int len = 9;
        var g = RandomDoubles(rng, len, 3); var u = RandomDoubles(rng, len); var r = RandomDoubles(rng, len);
        var (dg, du) = SwiGluReference.Backward(r, g, u);
        double Loss() => Dot(SwiGluReference.Forward(g, u), r);
        AssertGradient(dg, Loss, g, "swiglu dgate");
        AssertGradient(du, Loss, u, "swiglu dup");
    }
}
