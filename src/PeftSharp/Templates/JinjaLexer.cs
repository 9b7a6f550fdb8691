using System.Globalization;
using System.Text;

namespace PeftSharp.Templates;

internal enum TokKind { Text, BlockBegin, BlockEnd, VarBegin, VarEnd, Name, String, Int, Float, Op, Eof }

internal readonly record struct Token(TokKind Kind, string Value, int Line)
{
    public override string ToString() => Kind switch
    {
        TokKind.Eof => "end of template",
        TokKind.BlockBegin => "'{%'", TokKind.BlockEnd => "'%}'", TokKind.VarBegin => "'{{'", TokKind.VarEnd => "'}}'",
        TokKind.String => $"string '{Value}'",
        _ => $"'{Value}'",
    };
}

/// <summary>
/// Splits a template into text and tag tokens, applying whitespace control the way Hugging Face renders chat
/// templates: one trailing newline of the source is dropped, trim_blocks (the newline right after <c>%}</c> or
/// <c>#}</c> is removed), lstrip_blocks (spaces/tabs from the start of a line up to <c>{%</c> or <c>{#</c> are removed),
/// and <c>-</c> markers strip all whitespace on their side. transformers and @huggingface/jinja both use these settings.
/// </summary>
internal static class JinjaLexer
{
    private enum PieceKind { Text, Block, Var, Comment }

    private sealed class Piece
    {
        public PieceKind Kind;
        public string Text = "";      // raw text, or the tag's inner source
        public int Line;              // line where the piece (or the tag content) starts
        public bool StripBefore, StripAfter;
        public bool AtLineStart;      // Text only: the text starts at the very beginning of the template
    }

    public static List<Token> Tokenize(string source)
    {
        if (source.EndsWith('\n')) source = source[..^1];
        var pieces = Split(source);
        ApplyWhitespaceControl(pieces);
        var tokens = new List<Token>();
        foreach (var p in pieces)
        {
            switch (p.Kind)
            {
                case PieceKind.Text:
                    if (p.Text.Length > 0) tokens.Add(new Token(TokKind.Text, p.Text, p.Line));
                    break;
                case PieceKind.Comment:
                    break;
                case PieceKind.Block:
                case PieceKind.Var:
                    bool block = p.Kind == PieceKind.Block;
                    tokens.Add(new Token(block ? TokKind.BlockBegin : TokKind.VarBegin, block ? "{%" : "{{", p.Line));
                    int endLine = TokenizeExpression(p.Text, p.Line, tokens);
                    tokens.Add(new Token(block ? TokKind.BlockEnd : TokKind.VarEnd, block ? "%}" : "}}", endLine));
                    break;
            }
        }
        tokens.Add(new Token(TokKind.Eof, "", CountLines(source, source.Length)));
        return tokens;
    }

    private static int CountLines(string s, int end)
    {
        int line = 1;
        for (int i = 0; i < end && i < s.Length; i++) if (s[i] == '\n') line++;
        return line;
    }

    /// <summary>Cuts the source into text, {% %}, {{ }} and {# #} pieces.</summary>
    private static List<Piece> Split(string src)
    {
        var pieces = new List<Piece>();
        int i = 0, line = 1;
        var text = new StringBuilder();
        int textLine = 1, textStart = 0;
        void FlushText()
        {
            pieces.Add(new Piece { Kind = PieceKind.Text, Text = text.ToString(), Line = textLine, AtLineStart = textStart == 0 });
            text.Clear();
        }
        while (i < src.Length)
        {
            if (src[i] == '{' && i + 1 < src.Length && (src[i + 1] == '%' || src[i + 1] == '{' || src[i + 1] == '#'))
            {
                FlushText();
                char open = src[i + 1];
                int tagLine = line;
                int j = i + 2;
                bool stripBefore = j < src.Length && src[j] == '-';
                if (stripBefore) j++;
                var kind = open == '%' ? PieceKind.Block : open == '{' ? PieceKind.Var : PieceKind.Comment;
                int contentStart = j;
                int end = FindTagEnd(src, j, kind, tagLine);   // index of the closing two characters
                int contentEnd = end;
                bool stripAfter = contentEnd > contentStart && src[contentEnd - 1] == '-';
                if (stripAfter) contentEnd--;
                pieces.Add(new Piece
                {
                    Kind = kind, Text = src[contentStart..contentEnd], Line = tagLine,
                    StripBefore = stripBefore, StripAfter = stripAfter,
                });
                for (int k = i; k < end + 2; k++) if (src[k] == '\n') line++;
                i = end + 2;
                textLine = line; textStart = i;
                continue;
            }
            if (src[i] == '\n') line++;
            text.Append(src[i]);
            i++;
        }
        FlushText();
        return pieces;
    }

    private static int FindTagEnd(string src, int j, PieceKind kind, int line)
    {
        if (kind == PieceKind.Comment)
        {
            int e = src.IndexOf("#}", j, StringComparison.Ordinal);
            if (e < 0) throw new PeftException($"chat template line {line}: comment '{{#' is never closed with '#}}'");
            return e;
        }
        int depth = 0;
        for (int k = j; k < src.Length; k++)
        {
            char c = src[k];
            if (c == '\'' || c == '"')
            {
                int q = k + 1;
                while (q < src.Length && src[q] != c) { if (src[q] == '\\') q++; q++; }
                if (q >= src.Length) throw new PeftException($"chat template line {line}: string literal is never closed");
                k = q;
                continue;
            }
            if (kind == PieceKind.Block && c == '%' && k + 1 < src.Length && src[k + 1] == '}') return k;
            if (kind == PieceKind.Var)
            {
                if (c == '{') depth++;
                else if (c == '}')
                {
                    if (depth == 0 && k + 1 < src.Length && src[k + 1] == '}') return k;
                    depth--;
                }
            }
        }
        throw new PeftException($"chat template line {line}: tag '{(kind == PieceKind.Block ? "{%" : "{{")}' is never closed");
    }

    private static void ApplyWhitespaceControl(List<Piece> pieces)
    {
        for (int n = 0; n < pieces.Count; n++)
        {
            var p = pieces[n];
            if (p.Kind != PieceKind.Text) continue;
            var prev = n > 0 ? pieces[n - 1] : null;
            var next = n + 1 < pieces.Count ? pieces[n + 1] : null;
            string t = p.Text;
            // lstrip_blocks: a block or comment tag preceded on its line by spaces/tabs only.
            if (next is { Kind: PieceKind.Block or PieceKind.Comment })
            {
                int nl = t.LastIndexOf('\n');
                if (nl >= 0 || p.AtLineStart)
                {
                    int k = t.Length;
                    while (k > nl + 1 && (t[k - 1] == ' ' || t[k - 1] == '\t')) k--;
                    if (k == nl + 1) t = t[..k];
                }
            }
            // trim_blocks: the first newline after a block or comment tag.
            if (prev is { Kind: PieceKind.Block or PieceKind.Comment } && t.StartsWith('\n')) t = t[1..];
            if (next is { StripBefore: true }) t = t.TrimEnd();
            if (prev is { StripAfter: true }) t = t.TrimStart();
            p.Text = t;
        }
    }

    private static readonly string[] Operators =
        ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    /// <summary>Tokens of a tag's inner source; returns the line where it ends.</summary>
    private static int TokenizeExpression(string s, int line, List<Token> tokens)
    {
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (c == '\n') { line++; i++; continue; }
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (char.IsLetter(c) || c == '_')
            {
                int st = i;
                while (i < s.Length && (char.IsLetterOrDigit(s[i]) || s[i] == '_')) i++;
                tokens.Add(new Token(TokKind.Name, s[st..i], line));
                continue;
            }
            if (char.IsAsciiDigit(c))
            {
                int st = i;
                while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '_')) i++;
                bool isFloat = false;
                if (i + 1 < s.Length && s[i] == '.' && char.IsAsciiDigit(s[i + 1]))
                {
                    isFloat = true; i++;
                    while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
                }
                if (i < s.Length && (s[i] == 'e' || s[i] == 'E'))
                {
                    int save = i; i++;
                    if (i < s.Length && (s[i] == '+' || s[i] == '-')) i++;
                    if (i < s.Length && char.IsAsciiDigit(s[i])) { isFloat = true; while (i < s.Length && char.IsAsciiDigit(s[i])) i++; }
                    else i = save;
                }
                tokens.Add(new Token(isFloat ? TokKind.Float : TokKind.Int, s[st..i].Replace("_", ""), line));
                continue;
            }
            if (c == '\'' || c == '"')
            {
                var sb = new StringBuilder();
                int startLine = line;
                i++;
                while (i < s.Length && s[i] != c)
                {
                    if (s[i] == '\n') line++;
                    if (s[i] == '\\' && i + 1 < s.Length)
                    {
                        char e = s[i + 1];
                        i += 2;
                        switch (e)
                        {
                            case 'n': sb.Append('\n'); break;
                            case 't': sb.Append('\t'); break;
                            case 'r': sb.Append('\r'); break;
                            case 'b': sb.Append('\b'); break;
                            case 'f': sb.Append('\f'); break;
                            case 'v': sb.Append('\v'); break;
                            case '\\': sb.Append('\\'); break;
                            case '\'': sb.Append('\''); break;
                            case '"': sb.Append('"'); break;
                            case 'x' or 'u' or 'U':
                                int len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                                if (i + len > s.Length || !int.TryParse(s.AsSpan(i, len), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int cp))
                                    throw new PeftException($"chat template line {line}: invalid escape '\\{e}' in a string literal");
                                sb.Append(char.ConvertFromUtf32(cp));
                                i += len;
                                break;
                            default: sb.Append('\\').Append(e); break;   // Python keeps unknown escapes verbatim
                        }
                        continue;
                    }
                    sb.Append(s[i]);
                    i++;
                }
                if (i >= s.Length) throw new PeftException($"chat template line {startLine}: string literal is never closed");
                i++;
                tokens.Add(new Token(TokKind.String, sb.ToString(), startLine));
                continue;
            }
            bool matched = false;
            foreach (var op in Operators)
            {
                if (string.CompareOrdinal(s, i, op, 0, op.Length) == 0)
                {
                    tokens.Add(new Token(TokKind.Op, op, line));
                    i += op.Length;
                    matched = true;
                    break;
                }
            }
            if (!matched) throw new PeftException($"chat template line {line}: unexpected character '{c}'");
        }
        return line;
    }
}
