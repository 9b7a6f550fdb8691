using System.Globalization;

namespace PeftSharp.Templates;

/// <summary>
/// Recursive-descent parser for the Jinja subset used by Hugging Face chat templates. Operator precedence follows
/// Jinja2: or &lt; and &lt; not &lt; comparisons/in &lt; + - &lt; ~ &lt; * / // % &lt; ** &lt; unary &lt; filters/tests &lt; postfix.
/// </summary>
internal sealed class JinjaParser
{
    private readonly List<Token> _t;
    private int _p;
    private int _depth;

    private JinjaParser(List<Token> tokens) { _t = tokens; }

    public static List<Stmt> Parse(string source)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(source));
        var body = parser.ParseBody(out string? end);
        if (end != null) throw parser.Error($"unexpected '{{% {end} %}}' with no open block");
        return body;
    }

    private Token Cur => _t[_p];
    private Token Peek(int k = 1) => _t[Math.Min(_p + k, _t.Count - 1)];
    private Token Next() => _t[_p++];
    private PeftException Error(string msg, int? line = null) => new($"chat template line {line ?? Cur.Line}: {msg}");

    private bool IsOp(string op) => Cur.Kind == TokKind.Op && Cur.Value == op;
    private bool IsName(string name) => Cur.Kind == TokKind.Name && Cur.Value == name;

    private void ExpectOp(string op)
    {
        if (!IsOp(op)) throw Error($"expected '{op}', found {Cur}");
        _p++;
    }

    private string ExpectName()
    {
        if (Cur.Kind != TokKind.Name) throw Error($"expected a name, found {Cur}");
        return Next().Value;
    }

    private void ExpectBlockEnd()
    {
        if (Cur.Kind != TokKind.BlockEnd) throw Error($"expected '%}}', found {Cur}");
        _p++;
    }

    // ---------------- statements ----------------

    private static readonly HashSet<string> EndTags =
        ["endif", "elif", "else", "endfor", "endset", "endmacro", "endgeneration"];

    /// <summary>Parses statements until an end tag (returned in <paramref name="endTag"/>, its '{%' and name consumed)
    /// or the end of the template (null).</summary>
    private List<Stmt> ParseBody(out string? endTag)
    {
        Enter();
        try { return ParseBodyInner(out endTag); }
        finally { _depth--; }
    }

    /// <summary>Every recursive rule passes here: a template nested past <see cref="JinjaLimits.MaxParseDepth"/>
    /// (20,000 parentheses, say) is refused instead of overflowing the stack.</summary>
    private void Enter()
    {
        if (++_depth > JinjaLimits.MaxParseDepth || !System.Runtime.CompilerServices.RuntimeHelpers.TryEnsureSufficientExecutionStack())
            throw Error($"blocks, brackets or operators nested deeper than {JinjaLimits.MaxParseDepth} levels");
    }

    private List<Stmt> ParseBodyInner(out string? endTag)
    {
        var body = new List<Stmt>();
        while (true)
        {
            var tok = Cur;
            switch (tok.Kind)
            {
                case TokKind.Eof:
                    endTag = null;
                    return body;
                case TokKind.Text:
                    body.Add(new TextStmt(tok.Line, tok.Value));
                    _p++;
                    break;
                case TokKind.VarBegin:
                    _p++;
                    var e = ParseExpression();
                    if (Cur.Kind != TokKind.VarEnd) throw Error($"expected '}}}}', found {Cur}");
                    _p++;
                    body.Add(new OutputStmt(tok.Line, e));
                    break;
                case TokKind.BlockBegin:
                    _p++;
                    if (Cur.Kind != TokKind.Name) throw Error($"expected a tag name after '{{%', found {Cur}");
                    string name = Cur.Value;
                    if (EndTags.Contains(name)) { _p++; endTag = name; return body; }
                    _p++;
                    var stmt = ParseStatement(name, tok.Line);
                    if (stmt != null) body.Add(stmt);
                    break;
                default:
                    throw Error($"unexpected {tok}");
            }
        }
    }

    private Stmt? ParseStatement(string name, int line)
    {
        switch (name)
        {
            case "if": return ParseIf(line);
            case "for": return ParseFor(line);
            case "set": return ParseSet(line);
            case "macro": return ParseMacro(line);
            case "break": ExpectBlockEnd(); return new BreakStmt(line);
            case "continue": ExpectBlockEnd(); return new ContinueStmt(line);
            case "generation":
                // transformers' {% generation %} marks assistant text for label masks; it renders its body unchanged.
                ExpectBlockEnd();
                var inner = ParseBody(out string? end);
                if (end != "endgeneration") throw Error("'{% generation %}' is never closed with '{% endgeneration %}'", line);
                ExpectBlockEnd();
                return new GenerationStmt(line, inner);
            default:
                throw Error($"unsupported template tag '{{% {name} %}}' (supported: if, for, set, macro, break, continue, generation)", line);
        }
    }

    private Stmt ParseIf(int line)
    {
        var branches = new List<(Expr, List<Stmt>)>();
        List<Stmt>? elseBody = null;
        var test = ParseExpression();
        ExpectBlockEnd();
        while (true)
        {
            var body = ParseBody(out string? end);
            branches.Add((test, body));
            if (end == "elif") { test = ParseExpression(); ExpectBlockEnd(); continue; }
            if (end == "else")
            {
                ExpectBlockEnd();
                elseBody = ParseBody(out end);
            }
            if (end != "endif") throw Error($"'{{% if %}}' is never closed with '{{% endif %}}'" + (end != null ? $" (found '{end}')" : ""), line);
            ExpectBlockEnd();
            return new IfStmt(line, branches, elseBody);
        }
    }

    private Stmt ParseFor(int line)
    {
        var targets = new List<string> { ExpectName() };
        while (IsOp(",")) { _p++; targets.Add(ExpectName()); }
        if (!IsName("in")) throw Error($"expected 'in' in for loop, found {Cur}");
        _p++;
        var iterable = ParseTernaryLess();
        Expr? filter = null;
        if (IsName("if")) { _p++; filter = ParseTernaryLess(); }
        if (IsName("recursive")) throw Error("unsupported template feature: recursive for loops");
        ExpectBlockEnd();
        var body = ParseBody(out string? end);
        List<Stmt>? elseBody = null;
        if (end == "else") { ExpectBlockEnd(); elseBody = ParseBody(out end); }
        if (end != "endfor") throw Error("'{% for %}' is never closed with '{% endfor %}'", line);
        ExpectBlockEnd();
        return new ForStmt(line, targets, iterable, filter, body, elseBody);
    }

    private Stmt ParseSet(int line)
    {
        string first = ExpectName();
        if (IsOp("."))
        {
            _p++;
            string attr = ExpectName();
            ExpectOp("=");
            var v = ParseExpression();
            ExpectBlockEnd();
            return new SetStmt(line, [first], attr, v);
        }
        var targets = new List<string> { first };
        while (IsOp(",")) { _p++; targets.Add(ExpectName()); }
        if (Cur.Kind == TokKind.BlockEnd && targets.Count == 1)
        {
            _p++;
            var body = ParseBody(out string? end);
            if (end != "endset") throw Error("'{% set %}' block is never closed with '{% endset %}'", line);
            ExpectBlockEnd();
            return new SetBlockStmt(line, first, body);
        }
        ExpectOp("=");
        var value = ParseExpression();
        ExpectBlockEnd();
        return new SetStmt(line, targets, null, value);
    }

    private Stmt ParseMacro(int line)
    {
        string name = ExpectName();
        ExpectOp("(");
        var ps = new List<(string, Expr?)>();
        while (!IsOp(")"))
        {
            string p = ExpectName();
            Expr? def = null;
            if (IsOp("=")) { _p++; def = ParseExpression(); }
            ps.Add((p, def));
            if (IsOp(",")) _p++; else if (!IsOp(")")) throw Error($"expected ',' or ')' in macro parameters, found {Cur}");
        }
        _p++;
        ExpectBlockEnd();
        var body = ParseBody(out string? end);
        if (end != "endmacro") throw Error("'{% macro %}' is never closed with '{% endmacro %}'", line);
        if (Cur.Kind == TokKind.Name) _p++;   // {% endmacro name %}
        ExpectBlockEnd();
        return new MacroStmt(line, name, ps, body);
    }

    // ---------------- expressions ----------------

    private Expr ParseExpression()
    {
        Enter();
        try { return ParseExpressionInner(); }
        finally { _depth--; }
    }

    private Expr ParseExpressionInner()
    {
        var e = ParseTernaryLess();
        if (IsName("if"))
        {
            int line = Cur.Line;
            _p++;
            var test = ParseOr();
            Expr? elseExpr = null;
            if (IsName("else")) { _p++; elseExpr = ParseExpression(); }
            return new CondExpr(line, test, e, elseExpr);
        }
        return e;
    }

    private Expr ParseTernaryLess() => ParseOr();

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (IsName("or")) { int l = Next().Line; left = new BinaryExpr(l, "or", left, ParseAnd()); }
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (IsName("and")) { int l = Next().Line; left = new BinaryExpr(l, "and", left, ParseNot()); }
        return left;
    }

    private Expr ParseNot()
    {
        if (!IsName("not")) return ParseCompare();
        Enter();
        try { int l = Next().Line; return new UnaryExpr(l, "not", ParseNot()); }
        finally { _depth--; }
    }

    private Expr ParseCompare()
    {
        var left = ParseAdd();
        while (true)
        {
            int l = Cur.Line;
            if (Cur.Kind == TokKind.Op && Cur.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                string op = Next().Value;
                left = new BinaryExpr(l, op, left, ParseAdd());
            }
            else if (IsName("in")) { _p++; left = new BinaryExpr(l, "in", left, ParseAdd()); }
            else if (IsName("not") && Peek().Kind == TokKind.Name && Peek().Value == "in")
            {
                _p += 2;
                left = new BinaryExpr(l, "not in", left, ParseAdd());
            }
            else return left;
        }
    }

    private Expr ParseAdd()
    {
        var left = ParseConcat();
        while (Cur.Kind == TokKind.Op && Cur.Value is "+" or "-")
        {
            var op = Next();
            left = new BinaryExpr(op.Line, op.Value, left, ParseConcat());
        }
        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMul();
        while (IsOp("~")) { int l = Next().Line; left = new BinaryExpr(l, "~", left, ParseMul()); }
        return left;
    }

    private Expr ParseMul()
    {
        var left = ParsePow();
        while (Cur.Kind == TokKind.Op && Cur.Value is "*" or "/" or "//" or "%")
        {
            var op = Next();
            left = new BinaryExpr(op.Line, op.Value, left, ParsePow());
        }
        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary();
        while (IsOp("**")) { int l = Next().Line; left = new BinaryExpr(l, "**", left, ParseUnary()); }
        return left;
    }

    private Expr ParseUnary()
    {
        if (Cur.Kind == TokKind.Op && Cur.Value is "-" or "+")
        {
            Enter();
            try
            {
                var op = Next();
                return ParseFilters(new UnaryExpr(op.Line, op.Value, ParseUnary()));
            }
            finally { _depth--; }
        }
        return ParseFilters(ParsePostfix(ParsePrimary()));
    }

    private Expr ParseFilters(Expr e)
    {
        while (true)
        {
            if (IsOp("|"))
            {
                int l = Next().Line;
                string name = ExpectName();
                var args = new List<Expr>();
                var kwargs = new List<(string, Expr)>();
                if (IsOp("(")) ParseCallArgs(args, kwargs);
                e = new FilterExpr(l, e, name, args, kwargs);
            }
            else if (IsName("is"))
            {
                int l = Next().Line;
                bool neg = false;
                if (IsName("not")) { _p++; neg = true; }
                string name = ExpectName();
                var args = new List<Expr>();
                if (IsOp("("))
                {
                    var kw = new List<(string, Expr)>();
                    ParseCallArgs(args, kw);
                }
                else if (Cur.Kind is TokKind.String or TokKind.Int or TokKind.Float ||
                         (Cur.Kind == TokKind.Name && Cur.Value is not ("and" or "or" or "else" or "if" or "in" or "not" or "is")))
                {
                    args.Add(ParsePostfix(ParsePrimary()));   // `x is divisibleby 3`, `x is sameas none`
                }
                e = new TestExpr(l, e, name, args, neg);
            }
            else return e;
        }
    }

    private Expr ParsePostfix(Expr e)
    {
        while (true)
        {
            int l = Cur.Line;
            if (IsOp("."))
            {
                _p++;
                if (Cur.Kind == TokKind.Int) { e = new ItemExpr(l, e, new LiteralExpr(l, long.Parse(Next().Value, CultureInfo.InvariantCulture))); continue; }
                e = new AttrExpr(l, e, ExpectName());
            }
            else if (IsOp("["))
            {
                _p++;
                Expr? start = null, stop = null, step = null;
                bool isSlice = false;
                if (!IsOp(":")) start = ParseExpression();
                if (IsOp(":"))
                {
                    isSlice = true; _p++;
                    if (!IsOp(":") && !IsOp("]")) stop = ParseExpression();
                    if (IsOp(":")) { _p++; if (!IsOp("]")) step = ParseExpression(); }
                }
                ExpectOp("]");
                e = isSlice ? new SliceExpr(l, e, start, stop, step) : new ItemExpr(l, e, start!);
            }
            else if (IsOp("("))
            {
                var args = new List<Expr>();
                var kwargs = new List<(string, Expr)>();
                ParseCallArgs(args, kwargs);
                e = new CallExpr(l, e, args, kwargs);
            }
            else return e;
        }
    }

    private void ParseCallArgs(List<Expr> args, List<(string, Expr)> kwargs)
    {
        ExpectOp("(");
        while (!IsOp(")"))
        {
            if (Cur.Kind == TokKind.Name && Peek().Kind == TokKind.Op && Peek().Value == "=")
            {
                string k = Next().Value;
                _p++;
                kwargs.Add((k, ParseExpression()));
            }
            else
            {
                if (kwargs.Count > 0) throw Error("positional argument after keyword argument");
                args.Add(ParseExpression());
            }
            if (IsOp(",")) _p++;
            else if (!IsOp(")")) throw Error($"expected ',' or ')' in argument list, found {Cur}");
        }
        _p++;
    }

    private Expr ParsePrimary()
    {
        var tok = Cur;
        int l = tok.Line;
        switch (tok.Kind)
        {
            case TokKind.String:
            {
                _p++;
                string s = tok.Value;
                while (Cur.Kind == TokKind.String) s += Next().Value;   // adjacent literals concatenate
                return new LiteralExpr(l, s);
            }
            case TokKind.Int:
                _p++;
                if (!long.TryParse(tok.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out long iv))
                    throw Error($"integer literal {tok.Value} is too large");
                return new LiteralExpr(l, iv);
            case TokKind.Float:
                _p++;
                return new LiteralExpr(l, double.Parse(tok.Value, CultureInfo.InvariantCulture));
            case TokKind.Name:
                _p++;
                return tok.Value switch
                {
                    "true" or "True" => new LiteralExpr(l, true),
                    "false" or "False" => new LiteralExpr(l, false),
                    "none" or "None" => new LiteralExpr(l, null),
                    _ => new NameExpr(l, tok.Value),
                };
            case TokKind.Op when tok.Value == "(":
            {
                _p++;
                if (IsOp(")")) { _p++; return new ListExpr(l, []); }
                var first = ParseExpression();
                if (IsOp(","))
                {
                    var items = new List<Expr> { first };
                    while (IsOp(",")) { _p++; if (IsOp(")")) break; items.Add(ParseExpression()); }
                    ExpectOp(")");
                    return new ListExpr(l, items);   // tuples behave as lists
                }
                ExpectOp(")");
                return first;
            }
            case TokKind.Op when tok.Value == "[":
            {
                _p++;
                var items = new List<Expr>();
                while (!IsOp("]"))
                {
                    items.Add(ParseExpression());
                    if (IsOp(",")) _p++; else if (!IsOp("]")) throw Error($"expected ',' or ']' in list, found {Cur}");
                }
                _p++;
                return new ListExpr(l, items);
            }
            case TokKind.Op when tok.Value == "{":
            {
                _p++;
                var items = new List<(Expr, Expr)>();
                while (!IsOp("}"))
                {
                    var k = ParseExpression();
                    ExpectOp(":");
                    items.Add((k, ParseExpression()));
                    if (IsOp(",")) _p++; else if (!IsOp("}")) throw Error($"expected ',' or '}}' in dict, found {Cur}");
                }
                _p++;
                return new DictExpr(l, items);
            }
            default:
                throw Error($"unexpected {tok} in an expression");
        }
    }
}
