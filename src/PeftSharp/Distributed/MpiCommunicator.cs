using System.Runtime.InteropServices;
using static PeftSharp.Distributed.OpenMpiNative;

namespace PeftSharp.Distributed;

/// <summary>
/// MPI_COMM_WORLD of an installed Open MPI (Debian: <c>openmpi-bin libopenmpi-dev</c>), for processes started by
/// <c>mpirun -np N</c>. Open MPI's default error handler (MPI_ERRORS_ARE_FATAL) applies: a failed collective or a rank
/// that dies ends the job, and mpirun returns non-zero. Create one per process (MPI is initialized once per process);
/// disposing it finalizes MPI.
/// </summary>
public sealed class MpiCommunicator : ICommunicator
{
    readonly IntPtr _world, _float, _double, _sum;
    bool _finalized;

    MpiCommunicator(IntPtr lib)
    {
        _world = Symbol(lib, "ompi_mpi_comm_world");
        _float = Symbol(lib, "ompi_mpi_float");
        _double = Symbol(lib, "ompi_mpi_double");
        _sum = Symbol(lib, "ompi_mpi_op_sum");
        Check(MPI_Initialized(out int already), "MPI_Initialized");
        if (already != 0) throw new PeftException("MPI is already initialized in this process: create one MpiCommunicator per process");
        Check(MPI_Init(IntPtr.Zero, IntPtr.Zero), "MPI_Init");
        Check(MPI_Comm_rank(_world, out int rank), "MPI_Comm_rank");
        Check(MPI_Comm_size(_world, out int size), "MPI_Comm_size");
        Rank = rank;
        Size = size;
    }

    /// <summary>Initializes MPI; throws a <see cref="PeftException"/> naming the package when Open MPI is not installed.</summary>
    public static MpiCommunicator Create()
    {
        IntPtr lib = LoadGlobal();
        if (lib == IntPtr.Zero)
            throw new PeftException($"{Library} (Open MPI) could not be loaded: install it (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) " +
                "or run without mpirun");
        return new MpiCommunicator(lib);
    }

    /// <inheritdoc/>
    public int Rank { get; }
    /// <inheritdoc/>
    public int Size { get; }
    /// <inheritdoc/>
    public string Name => $"Open MPI, {Size} ranks";

    /// <inheritdoc/>
    public void AllReduceSum(Span<float> values)
    {
        if (values.IsEmpty) return;
        Check(MPI_Allreduce(InPlace, ref MemoryMarshal.GetReference(values), values.Length, _float, _sum, _world), "MPI_Allreduce(float)");
    }

    /// <inheritdoc/>
    public void AllReduceSum(Span<double> values)
    {
        if (values.IsEmpty) return;
        Check(MPI_AllreduceDouble(InPlace, ref MemoryMarshal.GetReference(values), values.Length, _double, _sum, _world), "MPI_Allreduce(double)");
    }

    /// <inheritdoc/>
    public void Broadcast(Span<float> values, int root = 0)
    {
        if ((uint)root >= (uint)Size) throw new ArgumentOutOfRangeException(nameof(root), $"root {root} is not a rank of {Size}");
        if (values.IsEmpty) return;
        Check(MPI_Bcast(ref MemoryMarshal.GetReference(values), values.Length, _float, root, _world), "MPI_Bcast");
    }

    /// <inheritdoc/>
    public void Barrier() => Check(MPI_Barrier(_world), "MPI_Barrier");

    /// <inheritdoc/>
    public void Abort(int exitCode)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        MPI_Abort(_world, exitCode);
        Environment.Exit(exitCode);   // not reached: MPI_Abort ends the process
    }

    /// <summary>Finalizes MPI (collective: every rank must dispose its communicator).</summary>
    public void Dispose()
    {
        if (_finalized) return;
        _finalized = true;
        MPI_Finalize();
    }

    static IntPtr Symbol(IntPtr lib, string name) =>
        NativeLibrary.TryGetExport(lib, name, out var p) ? p
            : throw new PeftException($"{Library} has no symbol '{name}': not Open MPI? (MPICH is not supported yet)");

    static void Check(int rc, string call)
    {
        if (rc != Success) throw new PeftException($"{call} failed with MPI error code {rc}");
    }
}
