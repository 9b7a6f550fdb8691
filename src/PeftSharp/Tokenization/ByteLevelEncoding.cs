using System.Buffers;
using System.Text;

namespace PeftSharp.Tokenization;

/// <summary>Text ⇄ byte-level token characters (UTF-8 bytes through <see cref="ByteLevelAlphabet"/>).</summary>
internal static class ByteLevelEncoding
{
    /// <summary>Maps the UTF-8 bytes of <paramref name="text"/> into <paramref name="dest"/> (one char per byte); returns the count.
    /// <paramref name="dest"/> must hold at least 3 chars per UTF-16 unit.</summary>
    public static int MapInto(ReadOnlySpan<char> text, Span<char> dest, Span<byte> scratch)
    {
        int n = Encoding.UTF8.GetBytes(text, scratch);
        var map = ByteLevelAlphabet.ByteToChar;
        for (int i = 0; i < n; i++) dest[i] = map[scratch[i]];
        return n;
    }

    public static string Map(ReadOnlySpan<char> text)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        byte[] bytes = ArrayPool<byte>.Shared.Rent(max);
        char[] chars = ArrayPool<char>.Shared.Rent(max);
        try
        {
            int n = MapInto(text, chars, bytes);
            return new string(chars, 0, n);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    /// <summary>Appends the bytes a byte-level token string stands for; characters outside the alphabet
    /// (e.g. an added token's own text) make the whole token count as its raw UTF-8, as HF's ByteLevel decoder does.</summary>
    public static void AppendBytes(string token, List<byte> bytes)
    {
        foreach (char c in token)
        {
            if (ByteLevelAlphabet.ByteOf(c) < 0)
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(token));
                return;
            }
        }
        foreach (char c in token) bytes.Add((byte)ByteLevelAlphabet.ByteOf(c));
    }
}
