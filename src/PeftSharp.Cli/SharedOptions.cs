using System.CommandLine;
using PeftSharp.Kernels;

namespace PeftSharp.Cli;

/// <summary>Options every compute command takes.</summary>
public static class SharedOptions
{
    public static Option<int> Threads() => new("--threads")
    {
        Description = "compute threads (default: all cores)",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    };

    public static void ApplyThreads(int threads) => PeftSharp.Kernels.Threads.Count = CheckThreads(threads);

    /// <summary>1 … 8 × the cores: 0 or a negative count is a mistake, and far more threads than cores only adds
    /// switching and per-thread buffers.</summary>
    public static int CheckThreads(int threads)
    {
        int max = MaxThreads;
        if (threads < 1 || threads > max)
            throw new PeftException($"--threads: must be between 1 and {max} (8 × the {Environment.ProcessorCount} cores), got {threads}");
        return threads;
    }

    public static int MaxThreads => 8 * Environment.ProcessorCount;
}
