namespace PeftSharp.Data;

/// <summary>Where a <see cref="DataLoader"/> stands: the next batch is batch <see cref="Batch"/> of epoch <see cref="Epoch"/>.
/// Save it with a checkpoint and give it back to <see cref="DataLoader.Seek"/> to resume with the same batches.</summary>
internal readonly record struct DataLoaderPosition(int Epoch, int Batch);

/// <summary>
/// Endless batches over the examples: each epoch shuffles the example order with a permutation derived from
/// (seed, epoch) (or keeps file order when shuffle is off), lays them into rows (<see cref="RowPlan"/>) and
/// cuts consecutive rows into batches. Everything is a pure function of (examples, options, seed, epoch), so a
/// saved <see cref="Position"/> restores the exact batch sequence.
/// </summary>
internal sealed class DataLoader
{
    private readonly IReadOnlyList<EncodedExample> _examples;
    private readonly BatchOptions _o;
    private readonly int _seed;
    private readonly bool _shuffle;
    private int _planEpoch = -1;
    private RowPlan? _plan;

    public DataLoaderPosition Position { get; private set; }

    public DataLoader(IReadOnlyList<EncodedExample> examples, BatchOptions options, int seed, bool shuffle = true)
    {
        options.Validate();
        if (examples.Count == 0) throw new PeftException("no training examples to make batches from");
        _examples = examples;
        _o = options;
        _seed = seed;
        _shuffle = shuffle;
        if (BatchesInEpoch(0) == 0)
            throw new PeftException("no example has a trained token within the maximum length; raise the maximum length or check the data");
    }

    /// <summary>The row layout of an epoch (how many rows, what was truncated or dropped).</summary>
    public RowPlan PlanFor(int epoch)
    {
        if (epoch != _planEpoch)
        {
            int[] order = _shuffle
                ? SeededShuffle.Permutation(_examples.Count, SeededShuffle.EpochSeed(_seed, epoch))
                : Enumerable.Range(0, _examples.Count).ToArray();
            _plan = RowPlan.Build(_examples, order, _o);
            _planEpoch = epoch;
        }
        return _plan!;
    }

    /// <summary>Batches in an epoch (with packing this varies slightly between epochs, as the order changes).</summary>
    public int BatchesInEpoch(int epoch) => (PlanFor(epoch).Rows.Count + _o.BatchSize - 1) / _o.BatchSize;

    /// <summary>The batch at the current position; advances the position (to the next epoch after the last batch).</summary>
    public Batch Next()
    {
        var p = Position;
        var plan = PlanFor(p.Epoch);
        int first = p.Batch * _o.BatchSize;
        int count = Math.Min(_o.BatchSize, plan.Rows.Count - first);
        var batch = plan.MakeBatch(_examples, first, count, _o);
        Position = first + count >= plan.Rows.Count ? new DataLoaderPosition(p.Epoch + 1, 0) : p with { Batch = p.Batch + 1 };
        return batch;
    }

    /// <summary>All batches of one epoch, in order (e.g. the evaluation set, with shuffle off); does not move the position.</summary>
    public IEnumerable<Batch> EpochBatches(int epoch)
    {
        int n = BatchesInEpoch(epoch);
        for (int b = 0; b < n; b++)
        {
            var plan = PlanFor(epoch);
            int first = b * _o.BatchSize;
            yield return plan.MakeBatch(_examples, first, Math.Min(_o.BatchSize, plan.Rows.Count - first), _o);
        }
    }

    /// <summary>Moves to a saved position (resume).</summary>
    public void Seek(DataLoaderPosition position)
    {
        if (position.Epoch < 0 || position.Batch < 0) throw new PeftException($"invalid data loader position {position}");
        int n = BatchesInEpoch(position.Epoch);
        if (position.Batch > n)
            throw new PeftException($"data loader position batch {position.Batch} is past the end of epoch {position.Epoch} ({n} batches); was the data set changed?");
        Position = position.Batch == n ? new DataLoaderPosition(position.Epoch + 1, 0) : position;
    }
}
