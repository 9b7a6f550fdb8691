namespace PeftSharp.Tokenization;

/// <summary>Text ⇄ token ids, as the model was trained. Implemented by the HF tokenizer.json loader.</summary>
public interface ITokenizer
{
    int VocabSize { get; }
    int? BosId { get; }
    int? EosId { get; }
    /// <summary>Ids for <paramref name="text"/>; <paramref name="addSpecial"/> applies the post-processor's BOS/EOS template.</summary>
    int[] Encode(string text, bool addSpecial = true);
    string Decode(ReadOnlySpan<int> ids, bool skipSpecial = false);
    /// <summary>The token string of one id (e.g. "▁the", "Ġthe").</summary>
    string IdToToken(int id);
}
