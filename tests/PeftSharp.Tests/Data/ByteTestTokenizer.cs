using System.Text;
using PeftSharp.Tokenization;

namespace PeftSharp.Tests.Data;

/// <summary>A deterministic tokenizer for tests: one id per UTF-8 byte (0–255), and special tokens (ids 256, 257, ...)
/// matched as whole strings anywhere in the text. Encode(addSpecial: true) prepends BOS when one is configured.</summary>
internal sealed class ByteTestTokenizer : ITokenizer
{
    private readonly List<string> _specials;

    public ByteTestTokenizer(string? bos = "<s>", string? eos = "</s>", params string[] otherSpecials)
    {
        _specials = [];
        if (bos != null) { BosId = 256 + _specials.Count; _specials.Add(bos); }
        if (eos != null) { EosId = 256 + _specials.Count; _specials.Add(eos); }
        foreach (var s in otherSpecials) if (!_specials.Contains(s)) _specials.Add(s);
    }

    public int VocabSize => 256 + _specials.Count;
    public int? BosId { get; }
    public int? EosId { get; }

    public int SpecialId(string token) => 256 + _specials.IndexOf(token);

    public int[] Encode(string text, bool addSpecial = true)
    {
        var ids = new List<int>();
        if (addSpecial && BosId is int bos) ids.Add(bos);
        int i = 0;
        var plain = new StringBuilder();
        void Flush()
        {
            foreach (byte b in Encoding.UTF8.GetBytes(plain.ToString())) ids.Add(b);
            plain.Clear();
        }
        while (i < text.Length)
        {
            int match = -1;
            for (int s = 0; s < _specials.Count; s++)
                if (string.CompareOrdinal(text, i, _specials[s], 0, _specials[s].Length) == 0 &&
                    (match < 0 || _specials[s].Length > _specials[match].Length)) match = s;
            if (match >= 0) { Flush(); ids.Add(256 + match); i += _specials[match].Length; }
            else plain.Append(text[i++]);
        }
        Flush();
        return ids.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecial = false)
    {
        var sb = new StringBuilder();
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if (id < 256) { bytes.Add((byte)id); continue; }
            sb.Append(Encoding.UTF8.GetString(bytes.ToArray()));
            bytes.Clear();
            if (!skipSpecial) sb.Append(_specials[id - 256]);
        }
        sb.Append(Encoding.UTF8.GetString(bytes.ToArray()));
        return sb.ToString();
    }

    public string IdToToken(int id) => id < 256 ? ((char)id).ToString() : _specials[id - 256];
}
