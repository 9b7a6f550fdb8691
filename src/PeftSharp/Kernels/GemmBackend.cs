namespace PeftSharp.Kernels;

/// <summary>Which implementation the GEMM uses.</summary>
public enum GemmBackend
{
    /// <summary>OpenBLAS for float32×float32 products when libopenblas is on the machine and the managed kernel is not
    /// the (faster) AVX-512 one ; the managed kernel otherwise.</summary>
    Auto,
    /// <summary>Always the managed packed kernel.</summary>
    Managed,
    /// <summary>OpenBLAS for float32×float32 products (an error if it is not installed); BF16/F16 operands still go managed.</summary>
    OpenBlas,
}

/// <summary>The SIMD strategy of the managed kernel, chosen once at start-up from the CPU's features.</summary>
public enum GemmSimd
{
    /// <summary>AVX-512F, 12×32 register tile (Zen4/Zen5, Intel Skylake-X and later).</summary>
    Avx512,
    /// <summary>AVX2 + FMA, 6×16 register tile (x86-64 since Haswell / Zen).</summary>
    Avx2Fma,
    /// <summary>Vector128 (SSE / NEON / software), 4×8 register tile: correct everywhere, slower.</summary>
    Portable,
}
