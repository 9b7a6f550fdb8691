using System.Runtime.InteropServices;

namespace PeftSharp.Distributed;

/// <summary>
/// P/Invoke to Open MPI's C API (libmpi.so.40). Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are the
/// addresses of exported globals (mpi.h: <c>OMPI_PREDEFINED_GLOBAL(type, ompi_mpi_comm_world)</c> is
/// <c>(type)&amp;ompi_mpi_comm_world</c>), so they are looked up as symbols; MPI_IN_PLACE is <c>(void*)1</c>.
/// </summary>
internal static class OpenMpiNative
{
    public const string Library = "libmpi.so.40";
    public static readonly IntPtr InPlace = 1;
    public const int Success = 0;

    const int RtldNow = 0x2, RtldGlobal = 0x100;

    [DllImport("libc.so.6", EntryPoint = "dlopen")]
    static extern IntPtr DlOpen(string file, int mode);

    /// <summary>Loads libmpi with RTLD_GLOBAL first: Open MPI's plug-ins (dlopen'ed by MPI_Init) resolve their
    /// symbols against libmpi's, which .NET's default RTLD_LOCAL load would hide. Null when libmpi is absent.</summary>
    public static IntPtr LoadGlobal()
    {
        try { return DlOpen(Library, RtldNow | RtldGlobal); }
        catch (DllNotFoundException) { return IntPtr.Zero; }
        catch (EntryPointNotFoundException) { return IntPtr.Zero; }
    }

    [DllImport(Library)] public static extern int MPI_Initialized(out int flag);
    [DllImport(Library)] public static extern int MPI_Finalized(out int flag);
    [DllImport(Library)] public static extern int MPI_Init(IntPtr argc, IntPtr argv);
    [DllImport(Library)] public static extern int MPI_Finalize();
    [DllImport(Library)] public static extern int MPI_Comm_rank(IntPtr comm, out int rank);
    [DllImport(Library)] public static extern int MPI_Comm_size(IntPtr comm, out int size);
    [DllImport(Library)] public static extern int MPI_Allreduce(IntPtr sendbuf, ref float recvbuf, int count, IntPtr datatype, IntPtr op, IntPtr comm);
    [DllImport(Library, EntryPoint = "MPI_Allreduce")] public static extern int MPI_AllreduceDouble(IntPtr sendbuf, ref double recvbuf, int count, IntPtr datatype, IntPtr op, IntPtr comm);
    [DllImport(Library)] public static extern int MPI_Bcast(ref float buffer, int count, IntPtr datatype, int root, IntPtr comm);
    [DllImport(Library)] public static extern int MPI_Barrier(IntPtr comm);
    [DllImport(Library)] public static extern int MPI_Abort(IntPtr comm, int errorcode);
}
