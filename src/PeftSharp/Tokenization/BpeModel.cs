using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace PeftSharp.Tokenization;

/// <summary>
/// The tokenizer.json "BPE" model: a word (one pre-token) becomes its characters' ids (or byte-fallback "&lt;0xXX&gt;" ids,
/// or unk), then the lowest-ranked adjacent merge is applied repeatedly (leftmost first on equal ranks) — HF's order.
/// Results are cached per word (bounded), so common words cost one dictionary probe.
/// </summary>
internal sealed class BpeModel
{
    const int CacheCapacity = 200_000;
    const int MaxCachedWordLength = 256;

    readonly Dictionary<string, int> vocab;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> vocabBySpan;
    readonly Dictionary<long, (int Rank, int NewId)> merges;
    readonly int? unkId;
    readonly bool fuseUnk, byteFallback, ignoreMerges;
    readonly int[]? byteFallbackIds; // byte → id of "<0xXX>", −1 where the vocabulary lacks it (Gemma 2 has no <0x09>)
    readonly Dictionary<string, int[]> cache = new(StringComparer.Ordinal);
    readonly Dictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> cacheBySpan;
    readonly Lock cacheLock = new();
    // SentencePiece-style models (no pre-tokenizer) hand the whole text to the model as one word. When no merge joins
    // a symbol not ending in "▁" to one starting with "▁", no merge can cross such a boundary, so cutting the word
    // there gives the same ids — and makes long inputs linear and cacheable.
    readonly bool splitBeforeMetaspace;

    public IReadOnlyDictionary<string, int> Vocab => vocab;

    BpeModel(Dictionary<string, int> vocab, Dictionary<long, (int, int)> merges, int? unkId, bool fuseUnk, bool byteFallback, bool ignoreMerges)
    {
        this.vocab = vocab;
        vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        this.merges = merges;
        this.unkId = unkId;
        this.fuseUnk = fuseUnk;
        this.byteFallback = byteFallback;
        this.ignoreMerges = ignoreMerges;
        cacheBySpan = cache.GetAlternateLookup<ReadOnlySpan<char>>();
        splitBeforeMetaspace = !ignoreMerges && vocab.ContainsKey("▁") && !merges.Keys.Any(k => CrossesMetaspace(k));
        if (byteFallback)
        {
            var ids = new int[256];
            bool any = false;
            for (int b = 0; b < 256; b++)
            {
                ids[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
                any |= ids[b] >= 0;
            }
            byteFallbackIds = any ? ids : null;
        }
    }

    /// <summary>Set for byte-level input, where every character stands for one byte: a byte with no token would be
    /// dropped without a word (as HF does), so it is an error naming the byte and the file instead.</summary>
    string? refuseMissingBytesOf;

    public static BpeModel FromJson(JsonElement e, string file, bool byteLevelInput = false)
    {
        string type = JsonUtil.Type(e, file, "model");
        if (type != "BPE") throw new PeftException($"{file}: unsupported model type '{type}' (only BPE is supported)");
        if (e.TryGetProperty("dropout", out var d) && d.ValueKind == JsonValueKind.Number && d.GetDouble() > 0)
            throw new PeftException($"{file}: BPE dropout {d.GetDouble()} is not supported for encoding (it is a training-time augmentation)");
        foreach (var name in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (JsonUtil.String(e, name) is { Length: > 0 } v)
                throw new PeftException($"{file}: BPE {name} \"{v}\" is not supported");

        if (!e.TryGetProperty("vocab", out var vocabJson) || vocabJson.ValueKind != JsonValueKind.Object)
            throw new PeftException($"{file}: model.vocab must be an object of token → id");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in vocabJson.EnumerateObject())
            vocab[p.Name] = JsonUtil.TokenId(p.Value, file, $"model.vocab[\"{p.Name}\"]");

        var vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        var merges = new Dictionary<long, (int, int)>();
        if (e.TryGetProperty("merges", out var mergesJson) && mergesJson.ValueKind == JsonValueKind.Array)
        {
            merges.EnsureCapacity(mergesJson.GetArrayLength());
            int rank = 0;
            char[] joined = new char[256];
            foreach (var m in mergesJson.EnumerateArray())
            {
                string a, b;
                if (m.ValueKind == JsonValueKind.String)
                {
                    string s = m.GetString()!;
                    int sp = s.IndexOf(' ');
                    if (sp <= 0 || sp == s.Length - 1 || s.IndexOf(' ', sp + 1) >= 0)
                        throw new PeftException($"{file}: model.merges[{rank}] \"{s}\" must be two tokens separated by one space");
                    if (!vocabBySpan.TryGetValue(s.AsSpan(0, sp), out int sa) || !vocabBySpan.TryGetValue(s.AsSpan(sp + 1), out int sb))
                        throw new PeftException($"{file}: model.merges[{rank}] uses a token not in the vocabulary: \"{s}\"");
                    // "a b" → "ab": drop the space in place instead of concatenating two substrings.
                    if (joined.Length < s.Length) joined = new char[s.Length * 2];
                    s.AsSpan(0, sp).CopyTo(joined);
                    s.AsSpan(sp + 1).CopyTo(joined.AsSpan(sp));
                    if (!vocabBySpan.TryGetValue(joined.AsSpan(0, s.Length - 1), out int sn))
                        throw new PeftException($"{file}: model.merges[{rank}] result \"{s.Replace(" ", "")}\" is not in the vocabulary");
                    merges.TryAdd(Key(sa, sb), (rank, sn)); // a repeated pair keeps its first (lowest) rank, as HF does
                    rank++;
                    continue;
                }
                if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2)
                {
                    a = m[0].GetString()!;
                    b = m[1].GetString()!;
                }
                else throw new PeftException($"{file}: model.merges[{rank}] must be \"a b\" or [\"a\",\"b\"], got {JsonUtil.Short(m)}");

                if (!vocab.TryGetValue(a, out int ia) || !vocab.TryGetValue(b, out int ib))
                    throw new PeftException($"{file}: model.merges[{rank}] uses a token not in the vocabulary: \"{a}\" \"{b}\"");
                if (!vocab.TryGetValue(a + b, out int inew))
                    throw new PeftException($"{file}: model.merges[{rank}] result \"{a + b}\" is not in the vocabulary");
                merges.TryAdd(Key(ia, ib), (rank, inew));
                rank++;
            }
        }

        int? unkId = null;
        if (JsonUtil.String(e, "unk_token") is { } unk)
        {
            if (!vocab.TryGetValue(unk, out int u)) throw new PeftException($"{file}: model.unk_token \"{unk}\" is not in the vocabulary");
            unkId = u;
        }
        var model = new BpeModel(vocab, merges, unkId, JsonUtil.Bool(e, "fuse_unk", false), JsonUtil.Bool(e, "byte_fallback", false),
            JsonUtil.Bool(e, "ignore_merges", false));
        if (byteLevelInput && unkId == null) model.refuseMissingBytesOf = file;
        return model;
    }

    static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    string?[]? idToToken;

    bool CrossesMetaspace(long key)
    {
        if (idToToken == null)
        {
            idToToken = new string?[vocab.Values.DefaultIfEmpty(0).Max() + 1];
            foreach (var (t, id) in vocab) if (id >= 0) idToToken[id] = t;
        }
        string? a = idToToken[(int)(key >> 32)], b = idToToken[(int)(uint)key];
        return a != null && b != null && b.StartsWith('▁') && !a.EndsWith('▁');
    }

    /// <summary>Appends the ids of one word.</summary>
    public void Tokenize(ReadOnlySpan<char> word, List<int> output)
    {
        if (word.Length == 0) return;
        if (splitBeforeMetaspace)
        {
            int start = 0;
            for (int i = 1; i < word.Length; i++)
                if (word[i] == '▁' && word[i - 1] != '▁') { TokenizeWord(word[start..i], output); start = i; }
            TokenizeWord(word[start..], output);
            return;
        }
        TokenizeWord(word, output);
    }

    void TokenizeWord(ReadOnlySpan<char> word, List<int> output)
    {
        if (ignoreMerges && vocabBySpan.TryGetValue(word, out int whole)) { output.Add(whole); return; }

        bool cacheable = word.Length <= MaxCachedWordLength;
        if (cacheable)
        {
            int[]? hit;
            lock (cacheLock) cacheBySpan.TryGetValue(word, out hit);
            if (hit != null) { output.AddRange(hit); return; }
        }

        int before = output.Count;
        Merge(word, output);
        if (cacheable)
        {
            var ids = CollectionsMarshal.AsSpan(output)[before..].ToArray();
            lock (cacheLock)
                if (cache.Count < CacheCapacity) cacheBySpan.TryAdd(word, ids);
        }
    }

    const int SmallWord = 48;

    /// <summary>The same merge order for short words without a heap: scan for the lowest-ranked pair (leftmost on ties),
    /// merge it, repeat. O(n²) lookups, no allocation; most words are a handful of symbols.</summary>
    void MergeSmall(Span<int> sym, List<int> output)
    {
        int n = sym.Length;
        Span<int> pairRank = stackalloc int[SmallWord];  // rank of (sym[i], sym[i+1]); int.MaxValue when no merge
        Span<int> pairNew = stackalloc int[SmallWord];
        for (int i = 0; i + 1 < n; i++) SetPair(sym, pairRank, pairNew, i);
        while (n > 1)
        {
            int best = -1, bestRank = int.MaxValue;
            for (int i = 0; i + 1 < n; i++)
                if (pairRank[i] < bestRank) { bestRank = pairRank[i]; best = i; }
            if (best < 0) break;
            sym[best] = pairNew[best];
            // Remove sym[best + 1]; pairs after it shift left by one.
            for (int i = best + 1; i + 1 < n; i++) { sym[i] = sym[i + 1]; pairRank[i] = pairRank[i + 1]; pairNew[i] = pairNew[i + 1]; }
            n--;
            if (best > 0) SetPair(sym, pairRank, pairNew, best - 1);
            if (best + 1 < n) SetPair(sym, pairRank, pairNew, best);
        }
        for (int i = 0; i < n; i++) output.Add(sym[i]);
    }

    void SetPair(Span<int> sym, Span<int> pairRank, Span<int> pairNew, int i)
    {
        if (merges.TryGetValue(Key(sym[i], sym[i + 1]), out var m)) { pairRank[i] = m.Rank; pairNew[i] = m.NewId; }
        else pairRank[i] = int.MaxValue;
    }

    bool HasEveryByte(ReadOnlySpan<char> ch, Span<byte> utf8, out int n)
    {
        n = Encoding.UTF8.GetBytes(ch, utf8);
        for (int k = 0; k < n; k++) if (byteFallbackIds![utf8[k]] < 0) return false;
        return true;
    }

    /// <summary>The merge loop: symbols in a doubly linked list, candidate merges in a min-heap on (rank, position).</summary>
    void Merge(ReadOnlySpan<char> word, List<int> output)
    {
        var ids = new List<int>(word.Length);
        Span<byte> utf8 = stackalloc byte[4];
        // Initial symbols: one per character (a surrogate pair is one character).
        for (int i = 0; i < word.Length;)
        {
            int len = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            var ch = word.Slice(i, len);
            if (vocabBySpan.TryGetValue(ch, out int id)) ids.Add(id);
            else if (byteFallbackIds != null && HasEveryByte(ch, utf8, out int n))
            {
                // HF: a character's bytes as "<0xXX>" tokens when each of them exists, otherwise the unk path.
                for (int k = 0; k < n; k++) ids.Add(byteFallbackIds[utf8[k]]);
            }
            else if (unkId is int unk)
            {
                // fuse_unk: a run of unknown characters becomes one unk.
                if (!(fuseUnk && ids.Count > 0 && ids[^1] == unk)) ids.Add(unk);
            }
            else if (refuseMissingBytesOf != null)
            {
                int b = len == 1 ? ByteLevelAlphabet.ByteOf(ch[0]) : -1;
                throw new PeftException($"{refuseMissingBytesOf}: the byte-level vocabulary has no token for " +
                    (b >= 0 ? $"byte 0x{b:X2} (written '{ch[0]}')" : $"character U+{char.ConvertToUtf32(ch.ToString(), 0):X4}") +
                    " and no unk_token, so text containing it cannot be encoded (HF would drop it silently)");
            }
            // No unk token and no byte fallback: the character is dropped, as HF's BPE does.
            i += len;
        }

        int count = ids.Count;
        if (count <= 1) { output.AddRange(ids); return; }
        if (count <= SmallWord) { MergeSmall(CollectionsMarshal.AsSpan(ids), output); return; }
        var sym = CollectionsMarshal.AsSpan(ids);
        var prev = new int[count];
        var next = new int[count];
        for (int i = 0; i < count; i++) { prev[i] = i - 1; next[i] = i + 1 < count ? i + 1 : -1; }

        var heap = new PriorityQueue<int, long>(count);
        for (int i = 0; i + 1 < count; i++)
            if (merges.TryGetValue(Key(sym[i], sym[i + 1]), out var m)) heap.Enqueue(i, ((long)m.Rank << 32) | (uint)i);

        while (heap.TryDequeue(out int pos, out long priority))
        {
            int rank = (int)(priority >> 32);
            int right = next[pos];
            if (sym[pos] < 0 || right < 0) continue; // left symbol merged away, or now last
            if (!merges.TryGetValue(Key(sym[pos], sym[right]), out var mm) || mm.Rank != rank) continue; // stale entry
            sym[pos] = mm.NewId;
            sym[right] = -1;
            int after = next[right];
            next[pos] = after;
            if (after >= 0) prev[after] = pos;
            int before = prev[pos];
            if (before >= 0 && merges.TryGetValue(Key(sym[before], sym[pos]), out var ml))
                heap.Enqueue(before, ((long)ml.Rank << 32) | (uint)before);
            if (after >= 0 && merges.TryGetValue(Key(sym[pos], sym[after]), out var mr))
                heap.Enqueue(pos, ((long)mr.Rank << 32) | (uint)pos);
        }
        for (int i = 0; i >= 0; i = next[i]) output.Add(sym[i]);
    }
}
