namespace PeftSharp.Cli.Training;

/// <summary>"Did you mean": the valid name closest to a misspelt one (edit distance), if it is close enough.</summary>
internal static class SettingNames
{
    public static string? Nearest(string given, IEnumerable<string> valid)
    {
        string g = given.Trim().ToLowerInvariant().Replace('-', '_');
        var best = valid.Select(v => (Name: v, Distance: Distance(g, v))).OrderBy(x => x.Distance).ThenBy(x => x.Name, StringComparer.Ordinal).FirstOrDefault();
        // Close enough to be a slip: up to a third of the name's length (at least 2) edits.
        return best.Name != null && best.Distance <= Math.Max(2, best.Name.Length / 3) ? best.Name : null;
    }

    /// <summary>Levenshtein distance with adjacent transpositions counted as one edit.</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}
