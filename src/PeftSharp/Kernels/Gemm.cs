using System.Runtime.Intrinsics.X86;
using PeftSharp.Compute;
using PeftSharp.Kernels.Blas;
using PeftSharp.Tensors;

namespace PeftSharp.Kernels;

/// <summary>
/// C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C, all row-major. op(X) = X or Xᵀ.
/// The orientations the layers use: "nn" (dx = dy·W), "nt" (y = x·Wᵀ), "tn" (dW = dyᵀ·x); all four work.
/// A and B may be F32, BF16 or F16 (widened to float32 while packing); C is float32. beta = 0 overwrites C
/// (NaN garbage there is ignored), beta = 1 accumulates.
/// Two implementations: the managed packed kernel (AVX-512, AVX2/FMA or portable, the strategy chosen once in the
/// <see cref="ComputeContext"/>) and, for float32×float32 products, the system OpenBLAS when it is installed and the
/// context selects it. The managed path gives the same bits for any thread count (each C element is summed by one
/// task in a fixed order); OpenBLAS gives the same bits for the same thread count.
/// </summary>
internal static unsafe class Gemm
{
    /// <summary>True when libopenblas was found and loaded.</summary>
    public static bool OpenBlasAvailable => OpenBlas.Available;

    /// <summary>OpenBLAS's kernel name for this CPU (e.g. "Haswell"), or null when absent.</summary>
    public static string? OpenBlasCoreName => OpenBlas.CoreName;

    /// <summary>True when this CPU has AVX2 and FMA.</summary>
    public static bool Avx2FmaSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>The product on the context's path for these operand types, with its threads and scratch pool.</summary>
    internal static void Multiply(ComputeContext ctx, bool transA, bool transB, int m, int n, int k,
        float alpha, in MatrixView a, in MatrixView b, float beta, float* c, int ldc)
        => MultiplyOn(ctx.PathFor(a.DType, b.DType), ctx.Threads, ctx.Buffers, transA, transB, m, n, k, alpha, a, b, beta, c, ldc);

    /// <summary>The same product on an explicit path and thread count (tests and the bench; no global state read).</summary>
    internal static void MultiplyOn(GemmPath path, int threads, BufferPool pool, bool transA, bool transB, int m, int n, int k,
        float alpha, in MatrixView a, in MatrixView b, float beta, float* c, int ldc)
    {
        Validate(transA, transB, m, n, k, a, b, c, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0) { ScaleC(m, n, beta, c, ldc); return; }
        switch (path)
        {
            case GemmPath.OpenBlas:
                if (a.DType != DType.F32 || b.DType != DType.F32)
                    throw new NotSupportedException($"OpenBLAS multiplies float32 only (A is {a.DType}, B is {b.DType})");
                OpenBlas.Sgemm(transA, transB, m, n, k, alpha, (float*)a.Data, a.Stride, (float*)b.Data, b.Stride, beta, c, ldc, threads);
                break;
            case GemmPath.ManagedAvx512:
                if (!Avx512Kernel.IsSupported) throw new PlatformNotSupportedException("the AVX-512 GEMM kernel needs a CPU with AVX-512F");
                // n ≤ 16 (LoRA rank-r outputs) fills only half of the 32-wide tile: the 6×16 AVX2 tile does the same
                // work per cycle without the partial-tile copy. A choice by shape only, so still deterministic.
                if (n <= 16 && Avx2FmaSupported) PackedGemm<Avx2Kernel>.Run(transA, transB, m, n, k, alpha, a, b, beta, c, ldc, threads, pool);
                else PackedGemm<Avx512Kernel>.Run(transA, transB, m, n, k, alpha, a, b, beta, c, ldc, threads, pool);
                break;
            case GemmPath.ManagedAvx2:
                if (!Avx2FmaSupported) throw new PlatformNotSupportedException("the AVX2/FMA GEMM kernel needs a CPU with AVX2 and FMA");
                PackedGemm<Avx2Kernel>.Run(transA, transB, m, n, k, alpha, a, b, beta, c, ldc, threads, pool);
                break;
            case GemmPath.ManagedPortable:
                PackedGemm<PortableKernel>.Run(transA, transB, m, n, k, alpha, a, b, beta, c, ldc, threads, pool);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(path));
        }
    }

    static void Validate(bool transA, bool transB, int m, int n, int k, in MatrixView a, in MatrixView b, float* c, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentException($"GEMM sizes must be ≥ 0 (m={m}, n={n}, k={k})");
        int aRows = transA ? k : m, aCols = transA ? m : k, bRows = transB ? n : k, bCols = transB ? k : n;
        if (k > 0 && m > 0 && (a.Rows < aRows || a.Cols < aCols))
            throw new ArgumentException($"GEMM operand A is {a.Rows}×{a.Cols} but op(A) must be {m}×{k} (transA={transA})");
        if (k > 0 && n > 0 && (b.Rows < bRows || b.Cols < bCols))
            throw new ArgumentException($"GEMM operand B is {b.Rows}×{b.Cols} but op(B) must be {k}×{n} (transB={transB})");
        if (ldc < n) throw new ArgumentException($"GEMM ldc={ldc} < n={n}");
        if (c == null && m > 0 && n > 0) throw new ArgumentException("GEMM output C is null");
    }

    // C = beta · C (beta = 0 writes zeros, ignoring whatever was there)
    static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        if (beta == 1) return;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0) row.Clear();
            else for (int j = 0; j < n; j++) row[j] *= beta;
        }
    }

    public static bool Avx512Supported => Avx512Kernel.IsSupported;

    /// <summary>True when this CPU can run the given strategy.</summary>
    public static bool IsSupported(GemmSimd simd) => simd switch
    {
        GemmSimd.Avx512 => Avx512Supported,
        GemmSimd.Avx2Fma => Avx2FmaSupported,
        _ => true,
    };

    internal static GemmPath ManagedPath(GemmSimd simd) => simd switch
    {
        GemmSimd.Avx512 => GemmPath.ManagedAvx512,
        GemmSimd.Avx2Fma => GemmPath.ManagedAvx2,
        _ => GemmPath.ManagedPortable,
    };

    /// <summary>Parses auto|managed|openblas (the CLI's PEFTSHARP_GEMM); <paramref name="source"/> names it in errors.</summary>
    internal static GemmBackend ParseBackend(string? value, string source = "environment variable PEFTSHARP_GEMM") => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => GemmBackend.Auto,
        "managed" => GemmBackend.Managed,
        "openblas" => GemmBackend.OpenBlas,
        _ => throw new PeftException($"{source}='{value}': expected auto, managed or openblas"),
    };
}

/// <summary>A concrete implementation of the product (what <see cref="GemmBackend"/> and <see cref="GemmSimd"/> resolve to).</summary>
internal enum GemmPath
{
    ManagedAvx512,
    ManagedAvx2,
    ManagedPortable,
    OpenBlas,
}
