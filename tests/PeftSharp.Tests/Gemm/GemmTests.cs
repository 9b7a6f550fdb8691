using PeftSharp.Kernels;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Gemm;

/// <summary>Every GEMM path against the float64 reference: orientations, dtypes, odd sizes, strides, alpha/beta.</summary>
public unsafe class GemmTests
{
    // Shapes (m, n, k): degenerate, below/around the 12×32, 6×16 and 4×8 tiles, across the KC (192/256) and MC (96)
    // block edges, LoRA rank-r products (operands read in place: few columns → A unpacked; few rows and whole
    // slivers → B unpacked), and wide n that spans many packed B slivers.
    static readonly (int m, int n, int k)[] Shapes =
    [
        (1, 1, 1), (3, 7, 17), (7, 3, 33), (17, 33, 7), (6, 16, 64), (33, 17, 65), (65, 130, 33),
        (130, 65, 131), (13, 40, 300), (200, 19, 5), (97, 16, 70), (16, 70, 97), (5, 600, 9),
        (20, 64, 300), (40, 96, 33), (70, 260, 200), (5, 4100, 300), (7, 4100, 200), (300, 17, 250), (20, 2048, 40),
    ];

    public static TheoryData<string, bool, bool> PathsAndOrientations()
    {
        var d = new TheoryData<string, bool, bool>();
        foreach (var p in new[] { "avx512", "avx2", "portable", "openblas" })
            foreach (var (ta, tb) in new[] { (false, false), (false, true), (true, false), (true, true) })
                d.Add(p, ta, tb);
        return d;
    }

    static bool TryPath(string name, out GemmPath path)
    {
        path = name switch
        {
            "avx512" => GemmPath.ManagedAvx512, "avx2" => GemmPath.ManagedAvx2,
            "portable" => GemmPath.ManagedPortable, _ => GemmPath.OpenBlas,
        };
        // A SIMD strategy this CPU lacks cannot run here; the portable one always does.
        if (path == GemmPath.ManagedAvx512 && !global::PeftSharp.Kernels.Gemm.Avx512Supported) return false;
        if (path == GemmPath.ManagedAvx2 && !global::PeftSharp.Kernels.Gemm.Avx2FmaSupported) return false;
        if (path == GemmPath.OpenBlas && !global::PeftSharp.Kernels.Gemm.OpenBlasAvailable)
        {
            // CI installs OpenBLAS: there its absence is a failure, never a silent pass.
            Assert.True(Environment.GetEnvironmentVariable("CI") is null, "OpenBLAS (libopenblas.so.0) is not installed on this CI machine");
            return false;
        }
        return true;
    }

    static void Check(GemmCase g, GemmPath path, int threads, double tol = 1e-5)
    {
        var expected = g.Reference();
        g.Run(path, threads);
        var actual = g.Result();
        Assert.DoesNotContain(actual, float.IsNaN);
        Numerics.AssertClose(actual, expected, tol, g.Describe(path) + $" threads={threads}");
    }

    [Theory]
    [MemberData(nameof(PathsAndOrientations))]
    public void F32_OddSizes_BetaZeroIgnoresNaN(string pathName, bool transA, bool transB)
    {
        if (!TryPath(pathName, out var path)) return;
        int seed = 1;
        foreach (var (m, n, k) in Shapes)
        {
            using var g = new GemmCase(seed++, transA, transB, m, n, k, DType.F32, DType.F32, alpha: 1f, beta: 0f);
            Check(g, path, threads: seed % 3 + 1);
        }
    }

    [Theory]
    [MemberData(nameof(PathsAndOrientations))]
    public void F32_AlphaBeta(string pathName, bool transA, bool transB)
    {
        if (!TryPath(pathName, out var path)) return;
        int seed = 100;
        foreach (var (alpha, beta) in new[] { (1f, 1f), (0.5f, -0.75f), (-2f, 1f), (1.5f, 0f) })
            foreach (var (m, n, k) in new[] { (7, 33, 17), (65, 17, 130), (6, 16, 300) })
            {
                using var g = new GemmCase(seed++, transA, transB, m, n, k, DType.F32, DType.F32, alpha, beta, pad: 7);
                Check(g, path, threads: 2);
            }
    }

    public static TheoryData<string, bool, bool, DType, DType> HalfOperands()
    {
        var d = new TheoryData<string, bool, bool, DType, DType>();
        foreach (var p in new[] { "avx512", "avx2", "portable" })
            foreach (var (ta, tb) in new[] { (false, false), (false, true), (true, false), (true, true) })
                foreach (var (at, bt) in new[] { (DType.F32, DType.BF16), (DType.BF16, DType.F32), (DType.F32, DType.F16), (DType.F16, DType.F32), (DType.BF16, DType.F16) })
                    d.Add(p, ta, tb, at, bt);
        return d;
    }

    // The reference reads the same widened values, so the only error left is float32 accumulation.
    [Theory]
    [MemberData(nameof(HalfOperands))]
    public void HalfPrecisionOperands_WidenedWhilePacking(string pathName, bool transA, bool transB, DType aType, DType bType)
    {
        if (!TryPath(pathName, out var path)) return;
        int seed = 200;
        foreach (var (m, n, k) in new[] { (1, 1, 1), (7, 17, 33), (33, 65, 17), (130, 33, 65), (13, 40, 300), (20, 64, 300), (30, 200, 70) })
        {
            using var g = new GemmCase(seed++, transA, transB, m, n, k, aType, bType, alpha: 0.75f, beta: seed % 2);
            Check(g, path, threads: 2);
        }
    }

    // k so long that whole packed column blocks (≤ 16 MiB) would be narrower than 512: B goes KC slice by KC slice,
    // the next slice packed while the current one is multiplied.
    [Theory]
    [InlineData("avx512", false, true)]
    [InlineData("avx512", true, false)]
    [InlineData("avx2", false, false)]
    [InlineData("avx2", true, true)]
    [InlineData("portable", false, true)]
    public void LongK_SliceBySlice(string pathName, bool transA, bool transB)
    {
        if (!TryPath(pathName, out var path)) return;
        using var g = new GemmCase(400, transA, transB, 7, 520, 8300, DType.F32, transA ? DType.F32 : DType.BF16, alpha: 1f, beta: 1f);
        Check(g, path, threads: 2);
        var first = g.Result();
        g.Run(path, 3);
        Assert.Equal(first, g.Result());
    }

    [Fact]
    public void OpenBlas_IsAvailableOrNoted()
    {
        if (global::PeftSharp.Kernels.Gemm.OpenBlasAvailable) { Assert.False(string.IsNullOrEmpty(global::PeftSharp.Kernels.Gemm.OpenBlasCoreName)); return; }
        Assert.True(Environment.GetEnvironmentVariable("CI") is null,
            "OpenBLAS (libopenblas.so.0) is not installed on this CI machine; its GEMM path would go untested");
        Console.WriteLine("note: libopenblas.so.0 not found; the OpenBLAS GEMM tests only ran the managed paths");
    }

    [Theory]
    [InlineData("avx512")]
    [InlineData("avx2")]
    [InlineData("portable")]
    [InlineData("openblas")]
    public void SameThreadCount_SameBits(string pathName)
    {
        if (!TryPath(pathName, out var path)) return;
        using var g = new GemmCase(7, false, true, 150, 130, 520, DType.F32, DType.F32);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            g.Run(path, threads);
            var first = g.Result();
            g.Run(path, threads);
            Assert.Equal(first, g.Result());
        }
    }

    // Stronger than required: each C element is summed by one task in a fixed order, so the split never matters.
    [Theory]
    [InlineData("avx512", false, true)]
    [InlineData("avx512", true, true)]
    [InlineData("avx2", false, true)]
    [InlineData("avx2", true, false)]
    [InlineData("portable", false, false)]
    public void Managed_AnyThreadCount_SameBits(string pathName, bool transA, bool transB)
    {
        if (!TryPath(pathName, out var path)) return;
        using var g = new GemmCase(8, transA, transB, 90, 200, 600, DType.F32, DType.BF16);
        g.Run(path, 1);
        var one = g.Result();
        foreach (int threads in new[] { 2, 3, 5 })
        {
            g.Run(path, threads);
            Assert.Equal(one, g.Result());
        }
    }

    // Packing buffers are per thread and reused: products running at once (e.g. per attention head inside a parallel
    // loop, each itself multi-threaded) must not share them.
    [Fact]
    public void ConcurrentProducts_DoNotShareBuffers()
    {
        var cases = Enumerable.Range(0, 6).Select(i =>
            new GemmCase(300 + i, i % 2 == 0, i % 3 == 0, 40 + 7 * i, 50 + 5 * i, 300 + 11 * i, DType.F32, i % 2 == 0 ? DType.BF16 : DType.F32)).ToArray();
        try
        {
            var expected = cases.Select(g => g.Reference()).ToArray();
            var path = TestCompute.Cpu.ManagedPath;
            Parallel.For(0, cases.Length, new ParallelOptions { MaxDegreeOfParallelism = 3 }, i => cases[i].Run(path, 2));
            for (int i = 0; i < cases.Length; i++)
                Numerics.AssertClose(cases[i].Result(), expected[i], 1e-5, cases[i].Describe(path));
        }
        finally { foreach (var g in cases) g.Dispose(); }
    }

    [Fact]
    public void KZeroOrAlphaZero_ScalesC()
    {
        foreach (var name in new[] { "portable", "avx2", "avx512" })
        {
            if (!TryPath(name, out var path)) continue;
            using var g = new GemmCase(9, false, false, 5, 6, 0, DType.F32, DType.F32, alpha: 1f, beta: 0f);
            g.Run(path, 1);
            Assert.All(g.Result(), v => Assert.Equal(0f, v));
            using var h = new GemmCase(10, false, false, 5, 6, 4, DType.F32, DType.F32, alpha: 0f, beta: 2f);
            var expected = h.Reference();
            h.Run(path, 1);
            Numerics.AssertClose(h.Result(), expected, 1e-7, "alpha=0 beta=2");
        }
    }

    [Fact]
    public void PublicMultiply_UsesConfiguredPath_AndMatchesReference()
    {
        using var g = new GemmCase(11, false, true, 37, 29, 45, DType.F32, DType.BF16, alpha: 1f, beta: 0f);
        var expected = g.Reference();
        g.Reset();
        global::PeftSharp.Kernels.Gemm.Multiply(TestCompute.Cpu, g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, g.A.View, g.B.View, g.Beta, g.C, g.Ldc);
        Numerics.AssertClose(g.Result(), expected, 1e-5, "Gemm.Multiply");
    }

    [Fact]
    public void WrongOperandShapes_Throw()
    {
        using var g = new GemmCase(12, false, false, 4, 5, 6, DType.F32, DType.F32);
        Assert.Throws<ArgumentException>(() =>
            global::PeftSharp.Kernels.Gemm.MultiplyOn(GemmPath.ManagedPortable, 1, TestCompute.Cpu.Buffers, false, false, 4, 5, 7, 1f, g.A.View, g.B.View, 0f, g.C, g.Ldc));
        Assert.Throws<ArgumentException>(() =>
            global::PeftSharp.Kernels.Gemm.MultiplyOn(GemmPath.ManagedPortable, 1, TestCompute.Cpu.Buffers, true, false, 4, 5, 6, 1f, g.A.View, g.B.View, 0f, g.C, g.Ldc));
        Assert.Throws<ArgumentException>(() =>
            global::PeftSharp.Kernels.Gemm.MultiplyOn(GemmPath.ManagedPortable, 1, TestCompute.Cpu.Buffers, false, false, 4, 5, 6, 1f, g.A.View, g.B.View, 0f, g.C, 4));
    }

    [Fact]
    public void BackendEnvironmentValues()
    {
        Assert.Equal(GemmBackend.Auto, global::PeftSharp.Kernels.Gemm.ParseBackend(null));
        Assert.Equal(GemmBackend.Managed, global::PeftSharp.Kernels.Gemm.ParseBackend("managed"));
        Assert.Equal(GemmBackend.OpenBlas, global::PeftSharp.Kernels.Gemm.ParseBackend(" OpenBLAS "));
        var e = Assert.Throws<PeftException>(() => global::PeftSharp.Kernels.Gemm.ParseBackend("mkl"));
        Assert.Contains("PEFTSHARP_GEMM", e.Message);
    }
}
