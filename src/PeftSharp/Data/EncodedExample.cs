namespace PeftSharp.Data;

/// <summary>A tokenized example: <see cref="Ids"/> as the model reads them and, for each position, the label of that
/// token (<see cref="Labels"/>[i] = Ids[i] when the model is trained to produce it, −100 when not), not shifted.</summary>
internal sealed class EncodedExample
{
    public const int IgnoreIndex = -100;

    public required int[] Ids { get; init; }
    public required int[] Labels { get; init; }
    public required string File { get; init; }
    public required int Line { get; init; }

    public int Length => Ids.Length;

    /// <summary>Tokens whose label is trained, not counting position 0 (nothing predicts it).</summary>
    public int TrainedTokenCount
    {
        get
        {
            int c = 0;
            for (int i = 1; i < Labels.Length; i++) if (Labels[i] != IgnoreIndex) c++;
            return c;
        }
    }
}
