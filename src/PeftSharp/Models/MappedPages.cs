using System.Runtime.InteropServices;
using PeftSharp.Tensors;

namespace PeftSharp.Models;

/// <summary>
/// Gives a memory-mapped tensor's pages back to the OS once it has been consumed (load-time quantization), so the
/// resident set holds the 4-bit copy, not the file's pages too. The mapping is read-only and file-backed, so a later
/// read simply faults the pages in again; rounding the range out to page boundaries is therefore harmless.
/// </summary>
internal static unsafe partial class MappedPages
{
    const int MADV_DONTNEED = 4;

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(nint addr, nuint length, int advice);

    public static void Release(Tensor t)
    {
        if (!OperatingSystem.IsLinux() || t.ByteLength == 0) return;
        long page = Environment.SystemPageSize;
        long start = (long)t.Data & ~(page - 1);
        long end = ((long)t.Data + t.ByteLength + page - 1) & ~(page - 1);
        try { Madvise((nint)start, (nuint)(end - start), MADV_DONTNEED); }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
    }
}
