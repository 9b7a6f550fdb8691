using System.Runtime.Intrinsics.X86;
using PeftSharp.Kernels.Blas;
using PeftSharp.Tensors;

namespace PeftSharp.Kernels;

/// <summary>
/// C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C, all row-major. op(X) = X or Xᵀ.
/// The orientations the layers use: "nn" (dx = dy·W), "nt" (y = x·Wᵀ), "tn" (dW = dyᵀ·x); all four work.
/// A and B may be F32, BF16 or F16 (widened to float32 while packing); C is float32. beta = 0 overwrites C
/// (NaN garbage there is ignored), beta = 1 accumulates.
/// Two implementations: the managed packed kernel (<see cref="Simd"/> picks AVX-512, AVX2/FMA or the portable one once
/// at start-up) and, for float32×float32 products, the system OpenBLAS when it is installed (<see cref="Backend"/>,
/// env PEFTSHARP_GEMM=auto|managed|openblas; Auto uses OpenBLAS when <see cref="AutoPrefersOpenBlas"/>).
/// Threads: <see cref="Threads.Count"/>. The managed path gives the same bits for any thread count (each C element
/// is summed by one task in a fixed order); OpenBLAS gives the same bits for the same thread count.
/// </summary>
public static unsafe class Gemm
{
    /// <summary>Which implementation runs; starts from env PEFTSHARP_GEMM (default Auto).</summary>
    public static GemmBackend Backend
    {
        get => s_backend ??= ParseBackendEnv(Environment.GetEnvironmentVariable("PEFTSHARP_GEMM"));
        set => s_backend = value;
    }

    static GemmBackend? s_backend;

    /// <summary>The managed kernel's SIMD strategy: the widest this CPU supports (env PEFTSHARP_GEMM_SIMD=avx512|avx2|portable
    /// picks another). Setting one the CPU lacks throws.</summary>
    public static GemmSimd Simd
    {
        get => s_simd;
        set => s_simd = IsSupported(value) ? value : throw new PlatformNotSupportedException($"this CPU cannot run the {value} GEMM kernel");
    }

    static GemmSimd s_simd = DefaultSimd();

    /// <summary>
    /// Whether <see cref="GemmBackend.Auto"/> hands float32×float32 products to OpenBLAS: when it is installed, unless the
    /// managed strategy is AVX-512 (measured 1.5–2× faster than the AVX2 kernels Debian's OpenBLAS 0.3.21 runs on Zen4/5).
    /// </summary>
    public static bool AutoPrefersOpenBlas => OpenBlas.Available && Simd != GemmSimd.Avx512;

    /// <summary>True when libopenblas was found and loaded.</summary>
    public static bool OpenBlasAvailable => OpenBlas.Available;

    /// <summary>OpenBLAS's kernel name for this CPU (e.g. "Haswell"), or null when absent.</summary>
    public static string? OpenBlasCoreName => OpenBlas.CoreName;

    public static bool Avx2FmaSupported => Avx2.IsSupported && Fma.IsSupported;

    // op(A) (m,k): A is (m,k), or (k,m) with transA; op(B) (k,n): B is (k,n), or (n,k) with transB; C (m,n), row stride ldc
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        float alpha, in MatrixView a, in MatrixView b, float beta, float* c, int ldc)
    {
        var path = Backend switch
        {
            GemmBackend.OpenBlas when a.DType == DType.F32 && b.DType == DType.F32 => GemmPath.OpenBlas,
            GemmBackend.Auto when AutoPrefersOpenBlas && a.DType == DType.F32 && b.DType == DType.F32 => GemmPath.OpenBlas,
            _ => ManagedPath(Simd),
        };
        MultiplyOn(path, Threads.Count, transA, transB, m, n, k, alpha, a, b, beta, c, ldc);
    }

    /// <summary>The same product on an explicit path and thread count (tests and the bench; no global state read).</summary>
    internal static void MultiplyOn(GemmPath path, int threads, bool transA, bool transB, int m, int n, int k,
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
                if (n <= 16 && Avx2FmaSupported) PackedGemm<Avx2Kernel>.Run(transA, transB, m, n, k, alpha, a, b, beta, c, ldc, threads);
                else PackedGemm<Avx512Kernel>.Run(transA, transB, m, n, k, alpha, a, b, beta, c, ldc, threads);
                break;
            case GemmPath.ManagedAvx2:
                if (!Avx2FmaSupported) throw new PlatformNotSupportedException("the AVX2/FMA GEMM kernel needs a CPU with AVX2 and FMA");
                PackedGemm<Avx2Kernel>.Run(transA, transB, m, n, k, alpha, a, b, beta, c, ldc, threads);
                break;
            case GemmPath.ManagedPortable:
                PackedGemm<PortableKernel>.Run(transA, transB, m, n, k, alpha, a, b, beta, c, ldc, threads);
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

    // The widest strategy the CPU runs, unless env PEFTSHARP_GEMM_SIMD=avx512|avx2|portable asks for a narrower one.
    static GemmSimd DefaultSimd()
    {
        GemmSimd best = Avx512Supported ? GemmSimd.Avx512 : Avx2FmaSupported ? GemmSimd.Avx2Fma : GemmSimd.Portable;
        GemmSimd? forced = Environment.GetEnvironmentVariable("PEFTSHARP_GEMM_SIMD")?.Trim().ToLowerInvariant() switch
        {
            "avx512" => GemmSimd.Avx512,
            "avx2" => GemmSimd.Avx2Fma,
            "portable" => GemmSimd.Portable,
            _ => null,
        };
        return forced is GemmSimd f && IsSupported(f) ? f : best;
    }

    internal static GemmBackend ParseBackendEnv(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => GemmBackend.Auto,
        "managed" => GemmBackend.Managed,
        "openblas" => GemmBackend.OpenBlas,
        _ => throw new PeftException($"environment variable PEFTSHARP_GEMM='{value}': expected auto, managed or openblas"),
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
