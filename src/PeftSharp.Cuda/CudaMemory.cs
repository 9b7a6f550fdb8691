using System.Runtime.InteropServices;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace PeftSharp.Cuda;

/// <summary>Device memory as the CUDA driver reports it (cuMemGetInfo on the accelerator's context).</summary>
internal static partial class CudaMemory
{
    [LibraryImport("libcuda.so.1", EntryPoint = "cuMemGetInfo_v2")]
    private static partial int MemGetInfo(out nuint free, out nuint total);

    public static (long Free, long Total) Info(Accelerator accelerator)
    {
        try
        {
            ((CudaAccelerator)accelerator).Bind();
            return MemGetInfo(out var free, out var total) == 0 ? ((long)free, (long)total) : (-1, -1);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return (-1, -1);
        }
    }
}
