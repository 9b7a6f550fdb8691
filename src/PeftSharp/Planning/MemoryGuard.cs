namespace PeftSharp.Planning;

/// <summary>Refuses work whose size, computed from options and config fields before anything is allocated, is past
/// the memory this process may use, with a message saying what it would need: a typo like --r 100000 ends in one
/// clear line, not an OutOfMemoryException or the OOM killer.</summary>
internal static class MemoryGuard
{
    /// <summary>The memory this process may use: the container or machine limit the .NET runtime sees.</summary>
    public static long AvailableBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>Throws when <paramref name="neededBytes"/> exceeds <paramref name="availableBytes"/> (default: <see cref="AvailableBytes"/>).</summary>
    /// <param name="neededBytes">Bytes the allocation would take.</param>
    /// <param name="what">What would be built, e.g. "training (lora, r 100000, batch 4 × 256 tokens)".</param>
    /// <param name="breakdown">Where the bytes go, e.g. "weights 1.2 GB, activations 40 GB".</param>
    /// <param name="hint">What to lower.</param>
    /// <param name="availableBytes">Bytes the machine can give (null: measured).</param>
    public static void EnsureFits(long neededBytes, string what, string breakdown, string hint, long? availableBytes = null)
    {
        long available = availableBytes ?? AvailableBytes;
        if (neededBytes < 0 || neededBytes > available)
            throw new PeftException($"{what} would need about {ByteSize.Format(neededBytes < 0 ? long.MaxValue : neededBytes)} " +
                                    $"({breakdown}), but {ByteSize.Format(available)} is available; {hint}");
    }
}
