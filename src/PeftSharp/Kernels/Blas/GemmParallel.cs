namespace PeftSharp.Kernels.Blas;

/// <summary>
/// Runs body(part) for part = 0..parts-1, one task each. Work is divided by <see cref="Range"/>, which depends only on
/// the counts, never on timing — the same fixed split as <see cref="Compute.ComputeContext.For"/>.
/// </summary>
static class GemmParallel
{
    public static void For(int parts, Action<int> body)
    {
        if (parts <= 1) { body(0); return; }
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, body);
    }

    /// <summary>Part `part` of [0, n) split into `parts` contiguous ranges.</summary>
    public static (int start, int end) Range(int n, int part, int parts) =>
        ((int)((long)n * part / parts), (int)((long)n * (part + 1) / parts));
}
