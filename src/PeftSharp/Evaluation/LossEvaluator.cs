using PeftSharp.Data;
using PeftSharp.Models;
using PeftSharp.Training;

namespace PeftSharp.Evaluation;

/// <summary>Mean token loss and perplexity of a model over encoded examples (trained tokens only, no dropout).</summary>
internal static class LossEvaluator
{
    /// <param name="examples">The evaluation set, encoded.</param>
    /// <param name="batching">How examples are packed into batches (in order, no shuffle).</param>
    /// <param name="passFor">Supplies a (reused) pass for a batch shape.</param>
    /// <param name="step">Recorded in the result as <see cref="EvalMetrics.Step"/>.</param>
    /// <param name="shape">Reshapes each batch before its pass (e.g. pads it to the pass's batch size); null = as built.</param>
    public static EvalMetrics Evaluate(IReadOnlyList<EncodedExample> examples, BatchOptions batching, Func<int, int, ModelPass> passFor, int step = 0,
        Func<Batch, Batch>? shape = null)
    {
        if (examples.Count == 0) return new EvalMetrics(step, double.NaN, double.NaN, 0);
        var (sum, count) = Sum(examples, batching, passFor, shape);
        double loss = count > 0 ? sum / count : double.NaN;
        return new EvalMetrics(step, loss, Math.Exp(loss), count);
    }

    /// <summary>Summed token loss and trained-token count over the batches that <paramref name="shard"/> selects (by
    /// batch index; all when null): one rank's share of a sharded evaluation.</summary>
    public static (double Sum, int Count) Sum(IReadOnlyList<EncodedExample> examples, BatchOptions batching, Func<int, int, ModelPass> passFor,
        Func<Batch, Batch>? shape = null, Func<int, bool>? shard = null)
    {
        var loader = new DataLoader(examples, batching, seed: 0, shuffle: false);
        double sum = 0;
        int count = 0, index = 0;
        foreach (var raw in loader.EpochBatches(0))
        {
            if (shard != null && !shard(index++)) continue;
            var b = shape != null ? shape(raw) : raw;
            var (s, c) = passFor(b.BatchSize, b.SeqLen).Loss(b.InputIds, b.Positions, b.SegmentIds, b.Targets);
            sum += s;
            count += c;
        }
        return (sum, count);
    }

    /// <summary>Convenience for one-off evaluation: passes are created and disposed here.</summary>
    public static EvalMetrics Evaluate(CausalLM model, Compute.ComputeContext compute, Nn.AdapterRouting routing, IReadOnlyList<EncodedExample> examples, BatchOptions batching)
    {
        var passes = new Dictionary<(int, int), ModelPass>();
        try
        {
            return Evaluate(examples, batching, (b, t) =>
            {
                if (!passes.TryGetValue((b, t), out var p)) passes[(b, t)] = p = new ModelPass(model, compute, b, t, recompute: true, routing);
                return p;
            });
        }
        finally { foreach (var p in passes.Values) p.Dispose(); }
    }
}
