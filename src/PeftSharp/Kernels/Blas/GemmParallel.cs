namespace PeftSharp.Kernels.Blas;

/// <summary>
/// Splits [0, n) into `parts` fixed contiguous ranges (the same split as <see cref="Threads.For"/>), one per task.
/// Which range a unit lands in depends only on n and parts, never on timing.
/// </summary>
static class GemmParallel
{
    public static void For(int n, int parts, Action<int, int> body)
    {
        parts = Math.Min(parts, n);
        if (parts <= 1) { if (n > 0) body(0, n); return; }
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p =>
        {
            int start = (int)((long)n * p / parts), end = (int)((long)n * (p + 1) / parts);
            if (end > start) body(start, end);
        });
    }
}
