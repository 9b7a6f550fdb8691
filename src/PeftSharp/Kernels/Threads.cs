namespace PeftSharp.Kernels;

/// <summary>
/// How many threads compute kernels use (the CLI's --threads). Results are deterministic for a given count:
/// work is split into fixed ranges by index, never by which thread finishes first.
/// </summary>
public static class Threads
{
    static int s_count = Environment.ProcessorCount;

    public static int Count
    {
        get => s_count;
        set => s_count = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), "threads must be ≥ 1");
    }

    public static ParallelOptions Options => new() { MaxDegreeOfParallelism = s_count };

    /// <summary>Runs body(start, end) over [0, n) split into at most Count contiguous, deterministic ranges.</summary>
    public static void For(int n, Action<int, int> body, int minPerThread = 1)
    {
        int parts = Math.Min(s_count, Math.Max(1, n / Math.Max(1, minPerThread)));
        if (parts <= 1) { body(0, n); return; }
        Parallel.For(0, parts, Options, p =>
        {
            int start = (int)((long)n * p / parts), end = (int)((long)n * (p + 1) / parts);
            if (end > start) body(start, end);
        });
    }
}
