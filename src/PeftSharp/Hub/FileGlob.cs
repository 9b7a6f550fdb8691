using System.Text;
using System.Text.RegularExpressions;

namespace PeftSharp.Hub;

/// <summary>fnmatch-style patterns as huggingface_hub's allow_patterns use them: <c>*</c> matches any run of
/// characters (slashes included), <c>?</c> one character, <c>[abc]</c> a set.</summary>
internal static class FileGlob
{
    public static bool Matches(string path, string pattern) => ToRegex(pattern).IsMatch(path);

    public static Regex ToRegex(string pattern)
    {
        var sb = new StringBuilder("^");
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            int close = c == '[' ? pattern.IndexOf(']', i + 1) : -1;
            if (c == '*') sb.Append(".*");
            else if (c == '?') sb.Append('.');
            else if (close > i + 1)
            {
                string set = pattern[(i + 1)..close];
                sb.Append('[').Append(set.StartsWith('!') ? "^" + Regex.Escape(set[1..]) : Regex.Escape(set)).Append(']');
                i = close;
            }
            else sb.Append(Regex.Escape(c.ToString()));
        }
        return new Regex(sb.Append('$').ToString(), RegexOptions.CultureInvariant);
    }
}
