using PeftSharp.Distributed;

namespace PeftSharp.Tests.TestSupport;

/// <summary>
/// N in-process ranks on N threads: a test communicator whose all-reduce sums the ranks' buffers in rank order (so every
/// rank gets the bit-identical result, as MPI's does), for checking the data-parallel math without mpirun.
/// </summary>
internal sealed class ThreadGroup
{
    readonly Barrier _barrier;
    readonly object?[] _slots;

    ThreadGroup(int size)
    {
        _barrier = new Barrier(size);
        _slots = new object?[size];
    }

    /// <summary>Runs <paramref name="body"/> once per rank, each on its own thread, and returns when all are done.</summary>
    public static void Run(int size, Action<ICommunicator> body)
    {
        var g = new ThreadGroup(size);
        var errors = new Exception?[size];
        var threads = Enumerable.Range(0, size).Select(r => new Thread(() =>
        {
            try { body(new Member(g, r)); }
            catch (Exception e) { errors[r] = e; g._barrier.RemoveParticipant(); }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (errors.FirstOrDefault(e => e != null) is { } first) throw new AggregateException(first);
    }

    void Reduce<T>(int rank, Span<T> values, Func<T, T, T> add)
    {
        _slots[rank] = values.ToArray();
        _barrier.SignalAndWait();
        var sum = (T[])((T[])_slots[0]!).Clone();
        for (int r = 1; r < _slots.Length; r++)
        {
            var x = (T[])_slots[r]!;
            for (int i = 0; i < sum.Length; i++) sum[i] = add(sum[i], x[i]);
        }
        _barrier.SignalAndWait();   // everyone has read the slots before they are reused
        sum.CopyTo(values);
    }

    sealed class Member(ThreadGroup g, int rank) : ICommunicator
    {
        public int Rank => rank;
        public int Size => g._slots.Length;
        public string Name => $"{Size} threads";
        public void AllReduceSum(Span<float> values) => g.Reduce(rank, values, (a, b) => a + b);
        public void AllReduceSum(Span<double> values) => g.Reduce(rank, values, (a, b) => a + b);
        public void Broadcast(Span<float> values, int root = 0)
        {
            if (rank == root) g._slots[root] = values.ToArray();
            g._barrier.SignalAndWait();
            ((float[])g._slots[root]!).CopyTo(values);
            g._barrier.SignalAndWait();
        }
        public void Barrier() => g._barrier.SignalAndWait();
        public void Abort(int exitCode) => throw new InvalidOperationException($"rank {rank} aborted ({exitCode})");
        public void Dispose() { }
    }
}
