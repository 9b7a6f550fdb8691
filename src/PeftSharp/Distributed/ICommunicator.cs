namespace PeftSharp.Distributed;

/// <summary>
/// The collective operations data-parallel training needs, over a fixed group of processes (ranks 0..Size−1).
/// Every rank must call the same collectives in the same order with the same lengths; a rank that fails or dies
/// ends the whole group (the transport's job, e.g. mpirun). <see cref="SingleProcess"/> is the group of one;
/// <see cref="MpiCommunicator"/> runs over an installed MPI (Open MPI). Another transport (e.g. NCCL) is one more
/// implementation.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's index in the group, 0-based (rank 0 writes files and reports progress).</summary>
    int Rank { get; }
    /// <summary>Number of processes in the group.</summary>
    int Size { get; }
    /// <summary>A short description for logs, e.g. "Open MPI, 2 ranks".</summary>
    string Name { get; }
    /// <summary>Replaces <paramref name="values"/> on every rank by the element-wise sum over all ranks.</summary>
    void AllReduceSum(Span<float> values);
    /// <summary>Replaces <paramref name="values"/> on every rank by the element-wise sum over all ranks.</summary>
    void AllReduceSum(Span<double> values);
    /// <summary>Copies rank <paramref name="root"/>'s <paramref name="values"/> to every rank.</summary>
    void Broadcast(Span<float> values, int root = 0);
    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();
    /// <summary>Ends every rank of the group now with <paramref name="exitCode"/> (after a rank's unrecoverable error,
    /// so the others do not wait for it in a collective).</summary>
    void Abort(int exitCode);
}
