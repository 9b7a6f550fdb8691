using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace PeftSharp.Hub;

/// <summary>
/// Checks a downloaded file against the Hub's ETag: a 64-hex ETag is the sha256 of an LFS file; a 40-hex ETag is
/// the git blob id of a regular file, sha1("blob &lt;size&gt;\0" + content).
/// </summary>
internal static partial class FileChecksum
{
    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Pattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex GitSha1Pattern();

    /// <summary>True when the ETag is a hash this class can check.</summary>
    public static bool IsVerifiable(string etag) => Sha256Pattern().IsMatch(etag) || GitSha1Pattern().IsMatch(etag);

    /// <summary>The hash of the file in the ETag's kind (sha256 or git blob sha1), lower-case hex.</summary>
    public static string Compute(string path, string etag)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        if (Sha256Pattern().IsMatch(etag)) return Convert.ToHexStringLower(SHA256.HashData(fs));
        if (!GitSha1Pattern().IsMatch(etag)) throw new PeftException($"ETag '{etag}' is neither a sha256 nor a git blob id");
        using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        sha1.AppendData(Encoding.ASCII.GetBytes($"blob {fs.Length}\0"));
        var buf = new byte[1 << 20];
        for (int n; (n = fs.Read(buf)) > 0;) sha1.AppendData(buf, 0, n);
        return Convert.ToHexStringLower(sha1.GetHashAndReset());
    }
}
