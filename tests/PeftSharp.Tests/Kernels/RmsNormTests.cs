using PeftSharp.Tests.TestSupport;
using PeftSharp.Kernels;
using PeftSharp.Kernels.Reference;
using static PeftSharp.Tests.Kernels.KernelCheck;
using static PeftSharp.Tests.TestSupport.Numerics;

namespace PeftSharp.Tests.Kernels;

public class RmsNormTests
{
    const float Eps = 1e-5f;

    [Theory]
    [InlineData(5, 37)]   // c not a multiple of the vector width
    [InlineData(7, 128)]  // Qwen3 per-head q/k norm shape (n = tokens·heads, c = head_dim)
    [InlineData(64, 512)] // enough work for several threads and dweight partials
    public void Forward_and_backward_match_float64_reference(int n, int c)
    {
        var rng = new Random(n * 1000 + c);
        var x = RandomFloats(rng, n * c, 2f);
        var w = RandomFloats(rng, c);
        var dy = RandomFloats(rng, n * c);
        var y = new float[n * c]; var rstd = new float[n];
        RmsNorm.Forward(TestCompute.Cpu, y, rstd, x, w, n, c, Eps);
        var (yRef, rRef) = RmsNormReference.Forward(ToDouble(x), ToDouble(w), n, c, Eps);
        AssertClose(y, yRef, 1e-6, "rmsnorm y");
        AssertClose(rstd, rRef, 1e-6, "rmsnorm rstd");

        var dx0 = RandomFloats(rng, n * c); var dw0 = RandomFloats(rng, c);
        var dx = (float[])dx0.Clone(); var dw = (float[])dw0.Clone();
        RmsNorm.Backward(TestCompute.Cpu, dx, dw, dy, x, w, rstd, n, c);
        var (dxRef, dwRef) = RmsNormReference.Backward(ToDouble(dy), ToDouble(x), ToDouble(w), n, c, Eps);
        AssertClose(Added(dx, dx0), dxRef, 1e-5, "rmsnorm dx");
        AssertClose(Added(dw, dw0), dwRef, 1e-5, "rmsnorm dw");
    }

    [Fact]
    public void Frozen_weight_skips_dweight()
    {
        int n = 3, c = 16;
        var rng = new Random(9);
        var x = RandomFloats(rng, n * c); var w = RandomFloats(rng, c); var dy = RandomFloats(rng, n * c);
        var y = new float[n * c]; var rstd = new float[n];
        RmsNorm.Forward(TestCompute.Cpu, y, rstd, x, w, n, c, Eps);
        var dx = new float[n * c];
        RmsNorm.Backward(TestCompute.Cpu, dx, Span<float>.Empty, dy, x, w, rstd, n, c);
        var (dxRef, _) = RmsNormReference.Backward(ToDouble(dy), ToDouble(x), ToDouble(w), n, c, Eps);
        AssertClose(dx, dxRef, 1e-5, "rmsnorm dx without dweight");
    }

    [Fact]
    public void Reference_backward_matches_finite_differences()
    {
        int n = 3, c = 5;
        var rng = new Random(10);
        var x = RandomDoubles(rng, n * c); var w = RandomDoubles(rng, c); var r = RandomDoubles(rng, n * c);
        var (dx, dw) = RmsNormReference.Backward(r, x, w, n, c, Eps);
        double Loss() => Dot(RmsNormReference.Forward(x, w, n, c, Eps).Y, r);
        AssertGradient(dx, Loss, x, "rmsnorm dx");
        AssertGradient(dw, Loss, w, "rmsnorm dw");
    }
}
