using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using PeftSharp.Tokenization;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft tokenize &lt;model-or-tokenizer&gt; --text "…"` prints {"ids":[…],"tokens":[…]}.
/// `--file f` prints one such line per input line: a line holding a JSON object with a string "text" field is
/// tokenized by that field (so a JSONL data set can be fed directly), any other line as raw text.
/// `--decode 1,2,3` prints the decoded text instead.
/// </summary>
internal sealed class TokenizeCommand : ICliCommand
{
    internal static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public Command Build()
    {
        var dir = new Argument<string>("tokenizer") { Description = "model folder with tokenizer.json (+ tokenizer_config.json), or a tokenizer.json path" };
        var text = new Option<string?>("--text") { Description = "text to tokenize" };
        var file = new Option<string?>("--file") { Description = "tokenize each line of this file (JSONL lines: their \"text\" field)" };
        var noSpecial = new Option<bool>("--no-special") { Description = "leave out the post-processor's special tokens (BOS/EOS)" };
        var decode = new Option<string?>("--decode") { Description = "comma-separated ids to decode to text" };
        var skipSpecial = new Option<bool>("--skip-special") { Description = "with --decode: leave special tokens out of the text" };
        var cmd = new Command("tokenize", "text → token ids and token strings (or --decode ids → text)");
        cmd.Arguments.Add(dir);
        foreach (var o in new Option[] { text, file, noSpecial, decode, skipSpecial }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            string? t = pr.GetValue(text), f = pr.GetValue(file), d = pr.GetValue(decode);
            int given = (t != null ? 1 : 0) + (f != null ? 1 : 0) + (d != null ? 1 : 0);
            if (given != 1) throw new PeftException("give exactly one of --text, --file or --decode");
            var tok = HfTokenizer.Load(ModelLocator.Value(pr, dir));
            var stdout = Console.Out;
            if (d != null)
            {
                stdout.WriteLine(tok.Decode(ParseIds(d), pr.GetValue(skipSpecial)));
                return 0;
            }
            bool addSpecial = !pr.GetValue(noSpecial);
            if (t != null)
            {
                stdout.WriteLine(Result(tok, t, addSpecial));
                return 0;
            }
            if (!File.Exists(f)) throw new PeftException($"{f}: file not found");
            foreach (var line in File.ReadLines(f!)) stdout.WriteLine(Result(tok, TextOfLine(line), addSpecial));
            return 0;
        }));
        return cmd;
    }

    public static string Result(HfTokenizer tok, string text, bool addSpecial)
    {
        int[] ids = tok.Encode(text, addSpecial);
        var tokens = ids.Select(tok.IdToToken).ToArray();
        return JsonSerializer.Serialize(new { ids, tokens }, Json);
    }

    /// <summary>A JSON object line with a string "text" field gives that field; anything else is the raw line.</summary>
    public static string TextOfLine(string line)
    {
        if (line.TrimStart().StartsWith('{'))
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("text", out var v) && v.ValueKind == JsonValueKind.String)
                    return v.GetString()!;
            }
            catch (JsonException) { }
        }
        return line;
    }

    public static int[] ParseIds(string s)
    {
        var parts = s.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out ids[i]) || ids[i] < 0)
                throw new PeftException($"--decode: \"{parts[i]}\" is not a token id (expected comma-separated non-negative integers)");
        return ids;
    }
}
