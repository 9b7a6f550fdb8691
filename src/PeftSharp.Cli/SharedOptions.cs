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

    public static void ApplyThreads(int threads) => PeftSharp.Kernels.Threads.Count = Math.Max(1, threads);
}
