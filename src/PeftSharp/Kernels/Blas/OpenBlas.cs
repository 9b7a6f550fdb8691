using System.Runtime.InteropServices;

namespace PeftSharp.Kernels.Blas;

/// <summary>
/// The system OpenBLAS as an optional guest: loaded at run time through NativeLibrary (no compile-time or package
/// dependency); if it is absent every product goes through the managed kernel.
/// </summary>
static unsafe class OpenBlas
{
    const int RowMajor = 101, NoTrans = 111, Trans = 112;

    static readonly delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> s_sgemm;
    static readonly delegate* unmanaged<int, void> s_setThreads;
    static readonly delegate* unmanaged<byte*> s_coreName;
    static int s_threadsSet = -1;

    public static bool Available => s_sgemm != null;

    /// <summary>Path or name the library was loaded from (null when absent).</summary>
    public static string? LoadedFrom { get; }

    static OpenBlas()
    {
        ShortenIdleSpin();
        string[] names = OperatingSystem.IsWindows() ? ["libopenblas.dll", "openblas.dll"]
            : OperatingSystem.IsMacOS() ? ["libopenblas.dylib", "libopenblas.0.dylib"]
            : ["libopenblas.so.0", "libopenblas.so"];
        foreach (var name in names)
        {
            if (!NativeLibrary.TryLoad(name, out var lib)) continue;
            if (!NativeLibrary.TryGetExport(lib, "cblas_sgemm", out var sgemm)) continue;
            s_sgemm = (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)sgemm;
            if (NativeLibrary.TryGetExport(lib, "openblas_set_num_threads", out var st))
                s_setThreads = (delegate* unmanaged<int, void>)st;
            if (NativeLibrary.TryGetExport(lib, "openblas_get_corename", out var cn))
                s_coreName = (delegate* unmanaged<byte*>)cn;
            LoadedFrom = name;
            return;
        }
    }

    /// <summary>
    /// OpenBLAS's idle worker threads poll (sched_yield) for 2^THREAD_TIMEOUT TSC cycles after each call — 2^28 by
    /// default, ~0.1 s — taking cores from the managed kernels that run between BLAS calls. It reads
    /// OPENBLAS_THREAD_TIMEOUT from the native environment when it loads, so unless the user set it, set 2^20 cycles
    /// (well under a millisecond) first. .NET's Environment.SetEnvironmentVariable does not reach the native
    /// environment on Unix, hence libc setenv.
    /// </summary>
    static void ShortenIdleSpin()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("OPENBLAS_THREAD_TIMEOUT") != null) return;
        try { _ = setenv("OPENBLAS_THREAD_TIMEOUT", "20", 0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int setenv([MarshalAs(UnmanagedType.LPStr)] string name, [MarshalAs(UnmanagedType.LPStr)] string value, int overwrite);

    /// <summary>OpenBLAS's name for the kernel set it picked for this CPU (e.g. "Haswell"), or null.</summary>
    public static string? CoreName => s_coreName == null ? null : Marshal.PtrToStringAnsi((nint)s_coreName());

    // C (m,n) = alpha · op(A) · op(B) + beta · C; a, b float32 row-major with leading dimensions lda, ldb
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda,
        float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        if (!Available) throw new PeftException("OpenBLAS requested (PEFTSHARP_GEMM=openblas or Gemm.Backend) but libopenblas.so.0 was not found; install libopenblas0-pthread or use the managed GEMM");
        if (s_setThreads != null && threads != s_threadsSet)
        {
            lock (typeof(OpenBlas))
            {
                s_setThreads(threads);
                s_threadsSet = threads;
            }
        }
        s_sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
}
