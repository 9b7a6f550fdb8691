using PeftSharp.Data;
using PeftSharp.Templates;
using PeftSharp.Tokenization;
using PeftSharp.Training;

namespace PeftSharp.Cli.Training;

/// <summary>
/// Counts the training micro-batches of one epoch, for num_train_epochs: the data is prepared the way the trainer
/// prepares it (same tokenizer, template, format, eval split and seed) and batched at the run's shape.
/// </summary>
internal static class EpochSteps
{
    /// <param name="ranks">Data-parallel ranks: an epoch is counted in global batches of ranks × per-device batch.</param>
    public static int BatchesPerEpoch(TrainingOptions o, int ranks = 1)
    {
        var tokenizer = HfTokenizer.Load(o.ModelDir);
        var data = TrainingData.Prepare(o.DataFile, tokenizer, ChatTemplateSource.TryLoad(o.ModelDir), new DataOptions
        {
            Format = DatasetFormats.Parse(o.DataFormat),
            SkipBadLines = o.SkipBadLines,
            TrainOnPrompt = o.TrainOnPrompt,
            EvalFraction = o.EvalFile != null ? 0 : o.EvalFraction,
            EvalFile = o.EvalFile,
            Seed = o.Seed,
        });
        var batching = new BatchOptions { BatchSize = o.BatchSize * ranks, MaxLength = o.MaxLength, Packing = o.Packing, PadId = tokenizer.EosId ?? 0, PadToMaxLength = true };
        return new DataLoader(data.Train, batching, o.Seed).BatchesInEpoch(0);
    }
}
