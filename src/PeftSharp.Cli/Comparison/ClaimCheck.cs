namespace PeftSharp.Cli.Comparison;

internal enum ClaimVerdict { Agrees, PartlyAgrees, Disagrees, Inconclusive, NotMeasured }

/// <summary>One claim of a seed document, quoted with its source, our definition of the measurement, our figures and
/// the verdict.</summary>
internal sealed record ClaimCheck(string Title, string Source, string Quote, string Definition, string Ours, ClaimVerdict Verdict)
{
    public string VerdictText => Verdict switch
    {
        ClaimVerdict.Agrees => "agrees",
        ClaimVerdict.PartlyAgrees => "partly agrees",
        ClaimVerdict.Disagrees => "disagrees",
        ClaimVerdict.Inconclusive => "inconclusive",
        _ => "not measured",
    };
}
