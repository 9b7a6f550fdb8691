using System.Text.RegularExpressions;

namespace PeftSharp.Hub;

/// <summary>A Hugging Face model id with an optional revision: <c>org/name</c>, <c>name</c>, <c>org/name@rev</c>
/// (a branch, tag or 40-hex commit).</summary>
internal sealed partial record HubModelId(string Repo, string Revision)
{
    public const string DefaultRevision = "main";

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")]
    private static partial Regex RepoPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    /// <summary>True when the revision is a full commit hash (no ref to look up).</summary>
    public bool IsCommit => CommitPattern().IsMatch(Revision);

    /// <summary>The cache folder name huggingface_hub uses: models--org--name.</summary>
    public string CacheFolderName => "models--" + Repo.Replace("/", "--");

    public override string ToString() => Revision == DefaultRevision ? Repo : $"{Repo}@{Revision}";

    /// <summary>Parses <c>org/name[@rev]</c>; null when the text cannot be a model id (a path, a URL, empty).</summary>
    public static HubModelId? TryParse(string text, string? revision = null)
    {
        string repo = text, rev = revision ?? DefaultRevision;
        int at = text.IndexOf('@');
        if (at >= 0)
        {
            repo = text[..at];
            if (revision == null) rev = text[(at + 1)..];
        }
        if (repo.Length is 0 or > 96 || !RepoPattern().IsMatch(repo) || repo.Contains("..") || repo.Contains("--")) return null;
        if (rev.Length == 0 || rev.Contains("..") || rev.StartsWith('/') || rev.Any(char.IsWhiteSpace)) return null;
        return new HubModelId(repo, rev);
    }

    /// <summary>Parses a model id or throws a <see cref="PeftException"/> saying what a model id looks like.</summary>
    public static HubModelId Parse(string text, string? revision = null) => TryParse(text, revision)
        ?? throw new PeftException($"'{text}' is not a Hugging Face model id (expected org/name or org/name@revision)");
}
