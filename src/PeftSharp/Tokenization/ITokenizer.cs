namespace PeftSharp.Tokenization;

/// <summary>Text ⇄ token ids, as the model was trained. Implemented by the HF tokenizer.json loader.</summary>
public interface ITokenizer
{
    /// <summary>Number of token ids (ids are 0 .. VocabSize − 1, added tokens included).</summary>
    int VocabSize { get; }
    /// <summary>Id of the beginning-of-sequence token, or null when there is none.</summary>
    int? BosId { get; }
    /// <summary>Id of the end-of-sequence token, or null when there is none.</summary>
    int? EosId { get; }
    /// <summary>Ids for <paramref name="text"/>; <paramref name="addSpecial"/> applies the post-processor's BOS/EOS template.</summary>
    int[] Encode(string text, bool addSpecial = true);
    /// <summary>Text for <paramref name="ids"/>, through the tokenizer's decoder.</summary>
    /// <param name="ids">Token ids; an id outside the vocabulary is a <see cref="PeftException"/>.</param>
    /// <param name="skipSpecial">Leave out special tokens (e.g. BOS, EOS, chat markers).</param>
    string Decode(ReadOnlySpan<int> ids, bool skipSpecial = false);
    /// <summary>The token string of one id (e.g. "▁the", "Ġthe").</summary>
    string IdToToken(int id);
}
