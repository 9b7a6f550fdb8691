using PeftSharp.Models;

namespace PeftSharp.Planning;

/// <summary>How one method (with or without gradient checkpointing) sits in a memory budget.</summary>
internal sealed record MethodFit(string Method, bool Checkpointing, MemoryEstimate AtRequested, bool FitsRequested,
    int MaxBatchAtRequestedSeq, MemoryEstimate? LargestFitting);

/// <summary>The recommendation and the numbers behind it.</summary>
internal sealed record Advice(long BudgetBytes, int Batch, int Seq, IReadOnlyList<MethodFit> Fits,
    string? Method, bool Checkpointing, int AdvisedBatch, int AdvisedSeq, string Reason)
{
    public MethodFit? Chosen => Method == null ? null : Fits.First(f => f.Method == Method && f.Checkpointing == Checkpointing);
}

/// <summary>
/// The seeds' "which method when" advice made quantitative. Quality order, as the seeds rank them: full fine-tuning
/// (updates every weight) ≥ DoRA ("consistently outperforms LoRA", seed 004) ≥ LoRA ≥ QDoRA ≥ QLoRA (4-bit base:
/// "slight" loss, seeds 001/002). Speed order: LoRA is faster than QLoRA (seed 002: +33–60 %), DoRA pays for its row
/// norms, gradient checkpointing re-runs each block's forward (≈ +⅓ compute). So: the best-quality method that fits the
/// budget at the requested batch × seq, without checkpointing if it fits so; if none fits there, the best one at a
/// smaller shape (keep the effective batch with gradient accumulation).
/// </summary>
internal static class MethodAdvisor
{
    public static readonly int[] BatchGrid = [1, 2, 4, 8, 16, 32, 64];
    public static readonly int[] SeqGrid = [256, 512, 1024, 2048, 4096, 8192];
    /// <summary>Best quality first.</summary>
    public static readonly string[] QualityOrder = ["full", "dora", "lora", "qdora", "qlora"];

    public static IEnumerable<int> SeqsFor(ModelConfig c)
    {
        var seqs = SeqGrid.Where(s => s <= c.MaxPositions).ToList();
        if (seqs.Count == 0) seqs.Add(c.MaxPositions);
        return seqs;
    }

    public static Advice Advise(ModelConfig c, long budgetBytes, int batch, int seq, int rank, string targets, string optimizer,
        ModulesToSaveCount? modulesToSave = null)
    {
        if (budgetBytes <= 0) throw new PeftException($"--budget: must be > 0 bytes, got {budgetBytes}");
        var fits = new List<MethodFit>();
        foreach (var method in QualityOrder)
            foreach (var ckpt in new[] { false, true })
            {
                MemoryEstimate Est(int b, int s) => MemoryEstimator.Estimate(c, method, b, s, rank, targets, ckpt, optimizer, modulesToSave: modulesToSave);
                var at = Est(batch, seq);
                int maxBatch = BatchGrid.Where(b => Est(b, seq).TotalBytes <= budgetBytes).DefaultIfEmpty(0).Max();
                MemoryEstimate? largest = null;
                foreach (var s in SeqsFor(c))
                    foreach (var b in BatchGrid)
                    {
                        var e = Est(b, s);
                        if (e.TotalBytes > budgetBytes) break;   // memory grows with batch
                        if (largest == null || e.Tokens > largest.Tokens || (e.Tokens == largest.Tokens && e.Seq > largest.Seq)) largest = e;
                    }
                fits.Add(new MethodFit(method, ckpt, at, at.TotalBytes <= budgetBytes, maxBatch, largest));
            }

        string Gib(long bytes) => ByteSize.Format(bytes);
        // 1. the best-quality method that fits at the requested shape, preferring no checkpointing
        foreach (var method in QualityOrder)
        {
            var plain = fits.First(f => f.Method == method && !f.Checkpointing);
            var ck = fits.First(f => f.Method == method && f.Checkpointing);
            var pick = plain.FitsRequested ? plain : ck.FitsRequested ? ck : null;
            if (pick == null) continue;
            string why = method switch
            {
                "full" => "full fine-tuning fits, and it trains every weight (best quality of the methods compared)",
                "dora" => "full fine-tuning does not fit; DoRA fits and the seeds rank it above LoRA in quality" + Faster("lora"),
                "lora" => "full fine-tuning and DoRA do not fit; LoRA does, at full base precision",
                "qdora" => "no method fits with a 16-bit base; QDoRA's 4-bit base fits and keeps DoRA's magnitude/direction split" + Faster("qlora"),
                _ => "only a 4-bit base fits: QLoRA has the smallest footprint",
            };
            string Faster(string alt)
            {
                var a = fits.First(f => f.Method == alt && f.Checkpointing == pick.Checkpointing);
                return a.FitsRequested ? $" ({alt} also fits at {Gib(a.AtRequested.TotalBytes)} and trains faster)" : "";
            }
            string ckText = pick.Checkpointing
                ? $"; gradient checkpointing is needed ({Gib(plain.AtRequested.TotalBytes)} without it)"
                : "; no gradient checkpointing needed";
            return new Advice(budgetBytes, batch, seq, fits, method, pick.Checkpointing, batch, seq,
                $"{why}: estimated {Gib(pick.AtRequested.TotalBytes)} of {Gib(budgetBytes)} at batch {batch} × seq {seq}{ckText}");
        }
        // 2. nothing fits there: the best-quality method that fits at some smaller shape
        foreach (var method in QualityOrder)
        {
            var best = fits.Where(f => f.Method == method && f.LargestFitting != null)
                .OrderByDescending(f => f.LargestFitting!.Tokens).ThenBy(f => f.Checkpointing).FirstOrDefault();
            if (best == null) continue;
            var e = best.LargestFitting!;
            return new Advice(budgetBytes, batch, seq, fits, method, best.Checkpointing, e.Batch, e.Seq,
                $"nothing fits at batch {batch} × seq {seq}; {method} fits at batch {e.Batch} × seq {e.Seq}" +
                $"{(best.Checkpointing ? " with gradient checkpointing" : "")} ({Gib(e.TotalBytes)} of {Gib(budgetBytes)}); " +
                "use gradient accumulation to keep the effective batch");
        }
        var smallest = fits.MinBy(f => MemoryEstimator.Estimate(c, f.Method, 1, SeqsFor(c).First(), rank, targets, f.Checkpointing, optimizer, modulesToSave: modulesToSave).TotalBytes)!;
        long need = MemoryEstimator.Estimate(c, smallest.Method, 1, SeqsFor(c).First(), rank, targets, smallest.Checkpointing, optimizer, modulesToSave: modulesToSave).TotalBytes;
        return new Advice(budgetBytes, batch, seq, fits, null, false, 0, 0,
            $"no method fits in {Gib(budgetBytes)}: the smallest estimate is {smallest.Method}" +
            $"{(smallest.Checkpointing ? " with gradient checkpointing" : "")} at batch 1 × seq {SeqsFor(c).First()}: {Gib(need)}" +
            (optimizer == "adamw" ? "; --optimizer adamw8bit shrinks the optimizer state" : ""));
    }
}
