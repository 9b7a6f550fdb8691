using PeftSharp.Kernels;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Gemm;

/// <summary>A seeded random matrix in some dtype, with NaN in the stride padding so any read past Cols shows up.</summary>
sealed unsafe class TestMatrix : IDisposable
{
    readonly NativeBuffer _buf;
    public MatrixView View { get; }

    public TestMatrix(Random rng, DType dtype, int rows, int cols, int stride)
    {
        _buf = new NativeBuffer(Math.Max(1L, (long)rows * stride) * dtype.Size());
        var values = new float[Math.Max(1L, (long)rows * stride)];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < stride; c++)
                values[(long)r * stride + c] = c < cols ? (float)(rng.NextDouble() * 2 - 1) : float.NaN;
        DTypeConvert.FromFloat(values, dtype, _buf.Pointer);
        View = new MatrixView(_buf.Pointer, dtype, rows, cols, stride);
    }

    public void Dispose() => _buf.Dispose();
}

/// <summary>One product to check: operands, a C with guard columns, and the float64 reference result.</summary>
sealed unsafe class GemmCase : IDisposable
{
    public const float Guard = 12345.5f;
    public readonly bool TransA, TransB;
    public readonly int M, N, K, Ldc;
    public readonly float Alpha, Beta;
    public readonly TestMatrix A, B;
    readonly float[] _cInit;
    readonly NativeBuffer _c;
    public float* C => (float*)_c.Pointer;

    public GemmCase(int seed, bool transA, bool transB, int m, int n, int k, DType aType, DType bType,
        float alpha = 1f, float beta = 0f, int pad = 3)
    {
        var rng = new Random(seed);
        (TransA, TransB, M, N, K, Alpha, Beta) = (transA, transB, m, n, k, alpha, beta);
        int aRows = transA ? k : m, aCols = transA ? m : k, bRows = transB ? n : k, bCols = transB ? k : n;
        A = new TestMatrix(rng, aType, aRows, aCols, aCols + pad);
        B = new TestMatrix(rng, bType, bRows, bCols, bCols + 2 * pad);
        Ldc = n + 5;
        _c = new NativeBuffer(Math.Max(1L, (long)m * Ldc) * 4);
        // beta = 0: C holds NaN garbage the product must ignore; otherwise random values it must scale and keep.
        _cInit = new float[(long)m * Ldc];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < Ldc; j++)
                _cInit[(long)i * Ldc + j] = j >= n ? Guard : beta == 0 ? float.NaN : (float)(rng.NextDouble() * 2 - 1);
        Reset();
    }

    public void Reset() => _cInit.CopyTo(new Span<float>(C, _cInit.Length));

    public double[] Reference()
    {
        Reset();
        var r = GemmReference.MultiplyDouble(TransA, TransB, M, N, K, Alpha, A.View, B.View, Beta, C, Ldc);
        return r;
    }

    public void Run(GemmPath path, int threads)
    {
        Reset();
        global::PeftSharp.Kernels.Gemm.MultiplyOn(path, threads, TestCompute.Cpu.Buffers, TransA, TransB, M, N, K, Alpha, A.View, B.View, Beta, C, Ldc);
    }

    /// <summary>The m×n result, after checking the guard columns past n were not touched.</summary>
    public float[] Result()
    {
        var r = new float[(long)M * N];
        for (int i = 0; i < M; i++)
        {
            for (int j = 0; j < N; j++) r[(long)i * N + j] = C[(long)i * Ldc + j];
            for (int j = N; j < Ldc; j++) Assert.Equal(Guard, C[(long)i * Ldc + j]);
        }
        return r;
    }

    public string Describe(GemmPath path) =>
        $"{path} {(TransA ? 't' : 'n')}{(TransB ? 't' : 'n')} m={M} n={N} k={K} A={A.View.DType} B={B.View.DType} alpha={Alpha} beta={Beta}";

    public void Dispose() { A.Dispose(); B.Dispose(); _c.Dispose(); }
}
