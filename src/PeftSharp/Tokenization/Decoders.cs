using System.Text;
using System.Text.Json;

namespace PeftSharp.Tokenization;

/// <summary>A tokenizer.json "decoder": turns token strings back into text, as a chain of token-list rewrites.</summary>
internal abstract class Decoder
{
    public abstract List<string> DecodeChain(List<string> tokens);

    public static Decoder? FromJson(JsonElement e, string file)
    {
        if (e.ValueKind == JsonValueKind.Null || e.ValueKind == JsonValueKind.Undefined) return null;
        string type = JsonUtil.Type(e, file, "decoder");
        switch (type)
        {
            case "Sequence":
                return new SequenceDecoder(e.GetProperty("decoders").EnumerateArray()
                    .Select(x => FromJson(x, file)).OfType<Decoder>().ToArray());
            case "ByteLevel": return new ByteLevelDecoder();
            case "Replace": return new ReplaceDecoder(Pattern.FromJson(e.GetProperty("pattern"), file), e.GetProperty("content").GetString()!);
            case "ByteFallback": return new ByteFallbackDecoder();
            case "Fuse": return new FuseDecoder();
            case "Strip":
                return new StripDecoder(e.GetProperty("content").GetString()!, JsonUtil.Int(e, "start", 0), JsonUtil.Int(e, "stop", 0));
            case "Metaspace":
                return new MetaspaceDecoder(JsonUtil.String(e, "replacement") ?? "▁",
                    (JsonUtil.String(e, "prepend_scheme") ?? (JsonUtil.Bool(e, "add_prefix_space", true) ? "always" : "never")) != "never");
            default: throw new PeftException($"{file}: unsupported decoder type '{type}'");
        }
    }
}

internal sealed class SequenceDecoder(Decoder[] steps) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        foreach (var s in steps) tokens = s.DecodeChain(tokens);
        return tokens;
    }
}

/// <summary>Byte-level tokens → bytes → UTF-8 text (invalid sequences become U+FFFD), all tokens fused.</summary>
internal sealed class ByteLevelDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var t in tokens) ByteLevelEncoding.AppendBytes(t, bytes);
        return [Encoding.UTF8.GetString(bytes.ToArray())];
    }
}

internal sealed class ReplaceDecoder(Pattern pattern, string content) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) => tokens.Select(t => pattern.Replace(t, content)).ToList();
}

/// <summary>Runs of "&lt;0xXX&gt;" tokens become the text of their bytes; if those bytes are not valid UTF-8,
/// each byte becomes one U+FFFD (HF's rule).</summary>
internal sealed class ByteFallbackDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        var strict = new UTF8Encoding(false, throwOnInvalidBytes: true);
        void Flush()
        {
            if (pending.Count == 0) return;
            try { result.Add(strict.GetString(pending.ToArray())); }
            catch (DecoderFallbackException) { for (int i = 0; i < pending.Count; i++) result.Add("\uFFFD"); }
            pending.Clear();
        }
        foreach (var t in tokens)
        {
            if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>' &&
                byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b))
                pending.Add(b);
            else { Flush(); result.Add(t); }
        }
        Flush();
        return result;
    }
}

internal sealed class FuseDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of <c>content</c> from each token.</summary>
internal sealed class StripDecoder(string content, int start, int stop) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) => tokens.Select(Strip).ToList();

    string Strip(string t)
    {
        if (content.Length != 1) throw new PeftException($"Strip decoder content must be one character, got \"{content}\"");
        char c = content[0];
        int s = 0, e = t.Length;
        for (int i = 0; i < start && s < e && t[s] == c; i++) s++;
        for (int i = 0; i < stop && e > s && t[e - 1] == c; i++) e--;
        return t[s..e];
    }
}

internal sealed class MetaspaceDecoder(string replacement, bool stripFirstSpace) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            string t = tokens[i].Replace(replacement, " ", StringComparison.Ordinal);
            if (i == 0 && stripFirstSpace && t.StartsWith(' ')) t = t[1..];
            result.Add(t);
        }
        return result;
    }
}
