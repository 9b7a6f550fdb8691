using System.Globalization;
using System.Text;

namespace PeftSharp.Tokenization;

/// <summary>
/// Unicode normalization forms (UAX #15) from the bundled UCD tables (<see cref="UnicodeNormalizationData"/>):
/// full decomposition (canonical, or compatibility for NFK*), canonical ordering, then canonical composition for NFC/NFKC.
/// Needed because the project runs with InvariantGlobalization, where string.Normalize leaves text unchanged.
/// </summary>
internal static class UnicodeNormalization
{
    const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28;
    const int NCount = VCount * TCount, SCount = LCount * NCount;

    static readonly Dictionary<int, int[]> Canonical = new(), Compat = new();
    static readonly Dictionary<int, byte> Ccc = new();
    static readonly Dictionary<long, int> Compose = new();

    static UnicodeNormalization()
    {
        foreach (var entry in UnicodeNormalizationData.Decompositions.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int colon = entry.IndexOf(':');
            int cp = int.Parse(entry.AsSpan(1, colon - 1), NumberStyles.HexNumber);
            int[] d = entry[(colon + 1)..].Split('.').Select(h => int.Parse(h, NumberStyles.HexNumber)).ToArray();
            (entry[0] == 'c' ? Canonical : Compat)[cp] = d;
        }
        foreach (var entry in UnicodeNormalizationData.CombiningClasses.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int colon = entry.IndexOf(':');
            Ccc[int.Parse(entry.AsSpan(0, colon), NumberStyles.HexNumber)] = byte.Parse(entry.AsSpan(colon + 1), NumberStyles.HexNumber);
        }
        var excluded = new HashSet<int>();
        foreach (var entry in UnicodeNormalizationData.CompositionExclusions.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var r = entry.Split('-');
            int lo = int.Parse(r[0], NumberStyles.HexNumber), hi = int.Parse(r[^1], NumberStyles.HexNumber);
            for (int c = lo; c <= hi; c++) excluded.Add(c);
        }
        foreach (var (cp, d) in Canonical)
            if (d.Length == 2 && !excluded.Contains(cp)) Compose[Key(d[0], d[1])] = cp;
    }

    static long Key(int a, int b) => ((long)a << 21) | (uint)b;

    static int CombiningClass(int cp) => cp < 0x300 ? 0 : Ccc.TryGetValue(cp, out byte c) ? c : 0;

    // Per form, BMP characters that may change under normalization or affect a neighbour: a decomposition, a non-zero
    // combining class, or being the second element of a composition. Everything else is "stable": text is copied
    // through untouched and only the regions around unstable characters are normalized.
    static readonly System.Collections.BitArray[] Unstable = new System.Collections.BitArray[4];
    static readonly HashSet<int> SecondElements = new();

    static int FormIndex(NormalizationForm form) => form switch
    {
        NormalizationForm.FormC => 0, NormalizationForm.FormD => 1, NormalizationForm.FormKC => 2, NormalizationForm.FormKD => 3,
        _ => throw new ArgumentOutOfRangeException(nameof(form)),
    };

    static System.Collections.BitArray UnstableTable(int formIndex)
    {
        lock (Unstable)
        {
            if (Unstable[formIndex] is { } t) return t;
            if (SecondElements.Count == 0) foreach (long k in Compose.Keys) SecondElements.Add((int)(k & 0x1FFFFF));
            var bits = new System.Collections.BitArray(0x10000);
            bool composes = formIndex is 0 or 2, compat = formIndex >= 2;
            for (int c = 0; c < 0x10000; c++) bits[c] = IsUnstable(c, composes, compat);
            return Unstable[formIndex] = bits;
        }
    }

    static bool IsUnstable(int cp, bool composes, bool compat)
    {
        if (cp >= 0xD800 && cp <= 0xDFFF) return false; // surrogates are looked up as pairs
        bool hangulSyllable = cp >= SBase && cp < SBase + SCount;
        bool hangulJamoVT = (cp >= VBase && cp < VBase + VCount) || (cp > TBase && cp < TBase + TCount);
        return CombiningClass(cp) != 0
            || (Canonical.ContainsKey(cp)) || (compat && Compat.ContainsKey(cp))
            || (hangulSyllable && !composes)
            || (composes && (SecondElements.Contains(cp) || hangulJamoVT));
    }

    public static string Normalize(string text, NormalizationForm form)
    {
        int fi = FormIndex(form);
        var table = UnstableTable(fi);
        bool composes = fi is 0 or 2, compat = fi >= 2;

        bool UnstableAt(int i, out int width)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                width = 2;
                return IsUnstable(char.ConvertToUtf32(c, text[i + 1]), composes, compat);
            }
            width = 1;
            return table[c];
        }

        StringBuilder? sb = null;
        int copied = 0; // text[..copied] is already in sb
        int pos = 0;
        int lastStable = -1; // start index of the last stable character before pos
        while (pos < text.Length)
        {
            if (!UnstableAt(pos, out int w)) { lastStable = pos; pos += w; continue; }
            // Region: the stable starter before (it may compose with what follows) through the next stable character.
            int start = lastStable >= copied ? lastStable : pos;
            int end = pos + w;
            while (end < text.Length && UnstableAt(end, out int w2)) end += w2;
            sb ??= new StringBuilder(text.Length + 16);
            sb.Append(text, copied, start - copied);
            AppendNormalized(text.AsSpan(start, end - start), compat, composes, sb);
            copied = pos = end;
            lastStable = -1;
        }
        if (sb == null) return text;
        sb.Append(text, copied, text.Length - copied);
        string result = sb.ToString();
        return result == text ? text : result;
    }

    static void AppendNormalized(ReadOnlySpan<char> region, bool compat, bool composes, StringBuilder sb)
    {
        var cps = new List<int>(region.Length + 8);
        for (int i = 0; i < region.Length;)
        {
            int cp = char.IsHighSurrogate(region[i]) && i + 1 < region.Length && char.IsLowSurrogate(region[i + 1])
                ? char.ConvertToUtf32(region[i], region[i + 1]) : region[i];
            i += cp > 0xFFFF ? 2 : 1;
            Decompose(cp, compat, cps);
        }
        // Canonical ordering: stable sort of each run of non-starters by combining class.
        for (int i = 1; i < cps.Count; i++)
        {
            int c = CombiningClass(cps[i]);
            if (c == 0) continue;
            int j = i;
            while (j > 0 && CombiningClass(cps[j - 1]) > c) { (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]); j--; }
        }
        if (composes) ComposeInPlace(cps);
        foreach (int cp in cps)
            if (cp > 0xFFFF) sb.Append(char.ConvertFromUtf32(cp)); else sb.Append((char)cp);
    }

    static void Decompose(int cp, bool compat, List<int> output)
    {
        if (cp >= SBase && cp < SBase + SCount)
        {
            int s = cp - SBase;
            output.Add(LBase + s / NCount);
            output.Add(VBase + s % NCount / TCount);
            if (s % TCount != 0) output.Add(TBase + s % TCount);
            return;
        }
        if (Canonical.TryGetValue(cp, out var d) || (compat && Compat.TryGetValue(cp, out d)))
        {
            foreach (int x in d) Decompose(x, compat, output);
            return;
        }
        output.Add(cp);
    }

    static void ComposeInPlace(List<int> cps)
    {
        if (cps.Count == 0) return;
        int starterIndex = CombiningClass(cps[0]) == 0 ? 0 : -1;
        int write = 1;
        int lastClass = starterIndex == 0 ? 0 : 256;
        for (int read = 1; read < cps.Count; read++)
        {
            int cp = cps[read];
            int cls = CombiningClass(cp);
            if (starterIndex >= 0 && (lastClass < cls || (lastClass == 0 && write - 1 == starterIndex)))
            {
                int starter = cps[starterIndex];
                int composed = ComposePair(starter, cp);
                if (composed >= 0)
                {
                    cps[starterIndex] = composed;
                    continue;
                }
            }
            if (cls == 0) { starterIndex = write; lastClass = 0; }
            else lastClass = cls;
            cps[write++] = cp;
        }
        cps.RemoveRange(write, cps.Count - write);
    }

    static int ComposePair(int a, int b)
    {
        if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
            return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
        if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount)
            return a + (b - TBase);
        return Compose.TryGetValue(Key(a, b), out int c) ? c : -1;
    }
}
