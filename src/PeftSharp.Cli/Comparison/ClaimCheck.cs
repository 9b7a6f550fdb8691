namespace PeftSharp.Cli.Comparison;

internal enum ClaimVerdict { Agrees, PartlyAgrees, Disagrees, Inconclusive, NotMeasured }

/// <summary>A seed document, cited by its title (or, where our copy has none, by what it is); the file name is kept
/// for report.json only.</summary>
internal sealed record SeedDocument(string File, string? Title, string Description)
{
    public string Citation => Title != null ? $"“{Title}”" : Description;
}

/// <summary>One part of a claim (a claim such as "better and cheap" has two), judged on its own.</summary>
internal sealed record ClaimPart(string Name, ClaimVerdict Verdict, string Finding);

/// <summary>One claim of a seed document, quoted with its source, our definition of the measurement, and a verdict
/// for every part of the claim; the claim's verdict combines its parts (<see cref="Combine"/>).</summary>
internal sealed record ClaimCheck(string Title, SeedDocument Source, string Quote, string Definition, IReadOnlyList<ClaimPart> Parts, string Note = "")
{
    public ClaimVerdict Verdict => Combine(Parts);

    public string VerdictText => Text(Verdict);

    /// <summary>Our figures: each part's finding with its own verdict (when the claim has several parts), then the note.</summary>
    public string Ours => string.Join("; ", Parts.Select(p => Parts.Count > 1 ? $"{p.Name}: {p.Finding} ({Text(p.Verdict)})" : p.Finding)) + "." +
                          (Note.Length > 0 ? " " + Note : "");

    public static string Text(ClaimVerdict v) => v switch
    {
        ClaimVerdict.Agrees => "agrees",
        ClaimVerdict.PartlyAgrees => "partly agrees",
        ClaimVerdict.Disagrees => "disagrees",
        ClaimVerdict.Inconclusive => "inconclusive",
        _ => "not measured",
    };

    /// <summary>
    /// A claim agrees only when every part agrees, and disagrees when every part that could be decided disagrees (one
    /// contradicted part contradicts the claim it belongs to). Parts that agree beside parts that disagree, are
    /// inconclusive or were not measured make it partly agree; when no part could be decided it is inconclusive
    /// (or not measured, when nothing was).
    /// </summary>
    public static ClaimVerdict Combine(IReadOnlyList<ClaimPart> parts)
    {
        var decided = parts.Where(p => p.Verdict is ClaimVerdict.Agrees or ClaimVerdict.PartlyAgrees or ClaimVerdict.Disagrees).ToList();
        if (decided.Count == 0)
            return parts.All(p => p.Verdict == ClaimVerdict.NotMeasured) ? ClaimVerdict.NotMeasured : ClaimVerdict.Inconclusive;
        if (decided.All(p => p.Verdict == ClaimVerdict.Disagrees)) return ClaimVerdict.Disagrees;
        if (decided.Count == parts.Count && decided.All(p => p.Verdict == ClaimVerdict.Agrees)) return ClaimVerdict.Agrees;
        return ClaimVerdict.PartlyAgrees;
    }
}
