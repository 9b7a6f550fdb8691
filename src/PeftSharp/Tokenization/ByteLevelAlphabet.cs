namespace PeftSharp.Tokenization;

/// <summary>
/// The GPT-2 byte ⇄ printable-character map used by byte-level BPE: bytes that are already printable
/// ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves, the other 68 bytes map to U+0100.. in byte order.
/// Every byte gets one BMP character, so a byte-level token string is never split by UTF-16.
/// </summary>
internal static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = BuildByteToChar();
    /// <summary>char → byte, or -1 for characters outside the alphabet (index up to U+0143).</summary>
    public static readonly short[] CharToByte = BuildCharToByte();

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    static short[] BuildCharToByte()
    {
        var inv = new short[256 + 68];
        Array.Fill(inv, (short)-1);
        for (int b = 0; b < 256; b++) inv[ByteToChar[b]] = (short)b;
        return inv;
    }

    /// <summary>The byte a character stands for, or -1 when the character is not in the alphabet.</summary>
    public static int ByteOf(char c) => c < CharToByte.Length ? CharToByte[c] : -1;
}
