using System.Globalization;
using System.Text;

namespace PeftSharp.Templates;

/// <summary>The error a template raises itself through <c>raise_exception(msg)</c>; the message is the template's.</summary>
internal sealed class TemplateRaisedException(string message) : PeftException(message);

/// <summary>Evaluates a parsed template. Variables live in a chain of scopes: the globals, then one scope per
/// for loop (persisting over its iterations, as in Jinja2) and per macro call; `set` writes to the innermost scope.</summary>
internal sealed partial class JinjaInterpreter
{
    private sealed class Scope(Scope? parent)
    {
        public readonly Dictionary<string, object?> Vars = new(StringComparer.Ordinal);
        public readonly Scope? Parent = parent;

        public bool TryGet(string name, out object? value)
        {
            for (var s = this; s != null; s = s.Parent)
                if (s.Vars.TryGetValue(name, out value)) return true;
            value = null;
            return false;
        }
    }

    private sealed class BreakSignal : Exception;
    private sealed class ContinueSignal : Exception;

    private readonly Scope _globals = new(null);
    private readonly JinjaBudget _budget;

    public JinjaInterpreter(IReadOnlyDictionary<string, object?> variables, JinjaLimits? limits = null)
    {
        _budget = new JinjaBudget(limits ?? JinjaLimits.Default);
        AddBuiltins(_globals.Vars, _budget);
        foreach (var (k, v) in variables) _globals.Vars[k] = JinjaValues.FromClr(v);
    }

    private StringBuilder? _root;

    /// <summary>[Start, End) of each {% generation %} block rendered directly into the output.</summary>
    public List<(int Start, int End)> GenerationSpans { get; } = [];

    public string Render(List<Stmt> program)
    {
        var sb = new StringBuilder();
        _root = sb;
        try { Exec(program, _globals, sb); }
        catch (PeftException) { throw; }
        catch (BreakSignal) { throw new PeftException("chat template: '{% break %}' outside a for loop"); }
        catch (ContinueSignal) { throw new PeftException("chat template: '{% continue %}' outside a for loop"); }
        catch (OverflowException) { throw new PeftException("chat template: an integer result does not fit in 64 bits"); }
        catch (OutOfMemoryException) { throw new PeftException("chat template: rendering ran out of memory; the template is refused"); }
        catch (Exception e) when (e is InvalidCastException or IndexOutOfRangeException or ArgumentException or InvalidOperationException)
        {
            throw new PeftException($"chat template: cannot evaluate the template ({e.Message})");
        }
        return sb.ToString();
    }

    private static PeftException Error(Node n, string msg) => new($"chat template line {n.Line}: {msg}");

    // ---------------- statements ----------------

    private void Exec(List<Stmt> body, Scope scope, StringBuilder sb)
    {
        foreach (var st in body) Exec(st, scope, sb);
    }

    private void Exec(Stmt st, Scope scope, StringBuilder sb)
    {
        _budget.Enter(st);
        _budget.Step(st);
        try { ExecStmt(st, scope, sb); }
        finally { _budget.Exit(); }
        if (sb.Length > _budget.Limits.MaxLength) _budget.CheckLength(st, sb.Length, "the rendered text");
    }

    private void ExecStmt(Stmt st, Scope scope, StringBuilder sb)
    {
        switch (st)
        {
            case TextStmt t:
                sb.Append(t.Text);
                break;
            case OutputStmt o:
                sb.Append(JinjaValues.ToStr(Eval(o.Value, scope)));
                break;
            case IfStmt i:
                foreach (var (test, body) in i.Branches)
                {
                    if (JinjaValues.Truthy(Eval(test, scope))) { Exec(body, scope, sb); return; }
                }
                if (i.Else != null) Exec(i.Else, scope, sb);
                break;
            case ForStmt f:
                ExecFor(f, scope, sb);
                break;
            case SetStmt s:
            {
                var value = Eval(s.Value, scope);
                if (s.Attr != null)
                {
                    if (!scope.TryGet(s.Targets[0], out var target) || target is not JinjaNamespace ns)
                        throw Error(s, $"cannot set '{s.Targets[0]}.{s.Attr}': '{s.Targets[0]}' is not a namespace() object");
                    ns.Attrs[s.Attr] = value;
                }
                else if (s.Targets.Count == 1) scope.Vars[s.Targets[0]] = value;
                else Unpack(s, s.Targets, value, scope);
                break;
            }
            case SetBlockStmt sb2:
            {
                var inner = new StringBuilder();
                Exec(sb2.Body, scope, inner);
                scope.Vars[sb2.Target] = inner.ToString();
                break;
            }
            case MacroStmt m:
                scope.Vars[m.Name] = MakeMacro(m, scope);
                break;
            case GenerationStmt g:
            {
                int start = sb.Length;
                Exec(g.Body, scope, sb);
                if (ReferenceEquals(sb, _root) && sb.Length > start) GenerationSpans.Add((start, sb.Length));
                break;
            }
            case BreakStmt: throw new BreakSignal();
            case ContinueStmt: throw new ContinueSignal();
            default:
                throw Error(st, $"internal: unknown statement {st.GetType().Name}");
        }
    }

    private void Unpack(Node n, List<string> targets, object? value, Scope scope)
    {
        if (value is not List<object?> items)
            throw Error(n, $"cannot unpack a {JinjaValues.TypeName(value)} into {targets.Count} names");
        if (items.Count != targets.Count)
            throw Error(n, $"cannot unpack {items.Count} values into {targets.Count} names");
        for (int k = 0; k < targets.Count; k++) scope.Vars[targets[k]] = items[k];
    }

    private void ExecFor(ForStmt f, Scope scope, StringBuilder sb)
    {
        var source = Iterate(f, Eval(f.Iterable, scope));
        var loopScope = new Scope(scope);
        void Bind(object? item)
        {
            if (f.Targets.Count == 1) loopScope.Vars[f.Targets[0]] = item;
            else Unpack(f, f.Targets, item, loopScope);
        }
        List<object?> items;
        if (f.Filter == null) items = source;
        else
        {
            items = [];
            foreach (var it in source)
            {
                Bind(it);
                if (JinjaValues.Truthy(Eval(f.Filter, loopScope))) items.Add(it);
            }
        }
        int n = items.Count;
        for (int i = 0; i < n; i++)
        {
            _budget.Step(f);
            loopScope.Vars["loop"] = new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["index"] = (long)(i + 1), ["index0"] = (long)i,
                ["revindex"] = (long)(n - i), ["revindex0"] = (long)(n - i - 1),
                ["first"] = i == 0, ["last"] = i == n - 1, ["length"] = (long)n,
                ["previtem"] = i > 0 ? items[i - 1] : JinjaUndefined.Instance,
                ["nextitem"] = i < n - 1 ? items[i + 1] : JinjaUndefined.Instance,
            };
            Bind(items[i]);
            try { Exec(f.Body, loopScope, sb); }
            catch (ContinueSignal) { }
            catch (BreakSignal) { break; }
        }
        if (n == 0 && f.Else != null) Exec(f.Else, loopScope, sb);
    }

    private List<object?> Iterate(Node n, object? v)
    {
        _budget.Step(n, v is List<object?> l ? l.Count : v is string s ? s.Length : 1);
        return IterateUncounted(n, v);
    }

    private static List<object?> IterateUncounted(Node n, object? v) => v switch
    {
        List<object?> l => new List<object?>(l),
        Dictionary<string, object?> d => d.Keys.Select(k => (object?)k).ToList(),
        string s => EnumerateChars(s),
        JinjaUndefined => [],
        _ => throw Error(n, $"cannot loop over a {JinjaValues.TypeName(v)}"),
    };

    private static List<object?> EnumerateChars(string s)
    {
        var l = new List<object?>();
        var e = StringInfoText(s);
        foreach (var c in e) l.Add(c);
        return l;
    }

    /// <summary>Python iterates strings by code point.</summary>
    private static IEnumerable<string> StringInfoText(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { yield return s.Substring(i, 2); i++; }
            else yield return s[i].ToString();
        }
    }

    private JinjaFunction MakeMacro(MacroStmt m, Scope defScope) => (args, kwargs) =>
    {
        var s = new Scope(defScope);
        if (args.Count > m.Params.Count) throw Error(m, $"macro '{m.Name}' takes {m.Params.Count} arguments, got {args.Count}");
        for (int i = 0; i < m.Params.Count; i++)
        {
            var (name, def) = m.Params[i];
            if (i < args.Count) s.Vars[name] = args[i];
            else if (kwargs.TryGetValue(name, out var kv)) s.Vars[name] = kv;
            else s.Vars[name] = def != null ? Eval(def, s) : JinjaUndefined.Instance;
        }
        foreach (var k in kwargs.Keys)
            if (!m.Params.Any(p => p.Name == k)) throw Error(m, $"macro '{m.Name}' has no parameter '{k}'");
        var sb = new StringBuilder();
        Exec(m.Body, s, sb);
        return sb.ToString();
    };

    // ---------------- expressions ----------------

    private object? Eval(Expr e, Scope scope)
    {
        _budget.Enter(e);
        _budget.Step(e);
        try { return _budget.CheckValue(e, EvalExpr(e, scope)); }
        finally { _budget.Exit(); }
    }

    private object? EvalExpr(Expr e, Scope scope)
    {
        switch (e)
        {
            case LiteralExpr l: return l.Value;
            case NameExpr n: return scope.TryGet(n.Name, out var v) ? v : JinjaUndefined.Instance;
            case AttrExpr a: return GetAttr(a, Eval(a.Target, scope), a.Name);
            case ItemExpr it: return GetItem(it, Eval(it.Target, scope), Eval(it.Index, scope));
            case SliceExpr sl:
                return Slice(sl, Eval(sl.Target, scope),
                    sl.Start == null ? null : Eval(sl.Start, scope),
                    sl.Stop == null ? null : Eval(sl.Stop, scope),
                    sl.Step == null ? null : Eval(sl.Step, scope));
            case CallExpr c:
            {
                var callee = Eval(c.Callee, scope);
                if (callee is not JinjaFunction fn)
                {
                    string what = c.Callee is NameExpr ne ? $"'{ne.Name}'" : c.Callee is AttrExpr ae ? $"'{ae.Name}'" : "this value";
                    throw Error(c, callee is JinjaUndefined
                        ? $"unsupported template feature: function or method {what} is not defined"
                        : $"{what} is a {JinjaValues.TypeName(callee)}, not a function");
                }
                var args = c.Args.Select(x => Eval(x, scope)).ToList();
                var kwargs = c.Kwargs.ToDictionary(kv => kv.Name, kv => Eval(kv.Value, scope), StringComparer.Ordinal);
                try { return fn(args, kwargs); }
                catch (PeftException) { throw; }
                catch (Exception ex) when (ex is not BreakSignal and not ContinueSignal) { throw Error(c, ex.Message); }
            }
            case FilterExpr f:
            {
                var operand = Eval(f.Operand, scope);
                var args = f.Args.Select(x => Eval(x, scope)).ToList();
                var kwargs = f.Kwargs.ToDictionary(kv => kv.Name, kv => Eval(kv.Value, scope), StringComparer.Ordinal);
                return ApplyFilter(f, f.Name, operand, args, kwargs);
            }
            case TestExpr t:
            {
                var operand = Eval(t.Operand, scope);
                var args = t.Args.Select(x => Eval(x, scope)).ToList();
                bool r = ApplyTest(t, t.Name, operand, args);
                return t.Negated ? !r : r;
            }
            case UnaryExpr u:
            {
                var x = Eval(u.Operand, scope);
                return u.Op switch
                {
                    "not" => !JinjaValues.Truthy(x),
                    "-" => x switch
                    {
                        long lv => (object)(-lv), double dv => (object)(-dv), bool bv => (object)(bv ? -1L : 0L),
                        _ => throw Error(u, $"cannot negate a {JinjaValues.TypeName(x)}"),
                    },
                    "+" => JinjaValues.IsNumber(x) ? x : throw Error(u, $"unary + needs a number, got a {JinjaValues.TypeName(x)}"),
                    _ => throw Error(u, $"unknown operator {u.Op}"),
                };
            }
            case BinaryExpr b:
                if (b.Op == "and") { var l = Eval(b.Left, scope); return JinjaValues.Truthy(l) ? Eval(b.Right, scope) : l; }
                if (b.Op == "or") { var l = Eval(b.Left, scope); return JinjaValues.Truthy(l) ? l : Eval(b.Right, scope); }
                return Binary(b, Eval(b.Left, scope), Eval(b.Right, scope));
            case CondExpr ce:
                return JinjaValues.Truthy(Eval(ce.Test, scope)) ? Eval(ce.Then, scope)
                    : ce.Else != null ? Eval(ce.Else, scope) : JinjaUndefined.Instance;
            case ListExpr le:
                return le.Items.Select(x => Eval(x, scope)).ToList();
            case DictExpr de:
            {
                var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, x) in de.Items)
                {
                    var key = Eval(k, scope);
                    if (key is not string ks) throw Error(de, $"dict keys must be strings, got a {JinjaValues.TypeName(key)}");
                    d[ks] = Eval(x, scope);
                }
                return d;
            }
            default:
                throw Error(e, $"internal: unknown expression {e.GetType().Name}");
        }
    }

    private object? GetAttr(Node n, object? target, string name)
    {
        switch (target)
        {
            case Dictionary<string, object?> d:
                if (d.TryGetValue(name, out var v)) return v;
                return DictMethod(n, d, name) ?? (object)JinjaUndefined.Instance;
            case JinjaNamespace ns:
                return ns.Attrs.TryGetValue(name, out var nv) ? nv : JinjaUndefined.Instance;
            case string s:
                return StringMethod(n, s, name);
            case List<object?> l:
                return ListMethod(n, l, name);
            case JinjaUndefined:
                throw Error(n, $"cannot read attribute '{name}' of an undefined value");
            case null:
                throw Error(n, $"cannot read attribute '{name}' of none");
            default:
                return JinjaUndefined.Instance;
        }
    }

    private object? GetItem(Node n, object? target, object? index)
    {
        switch (target)
        {
            case Dictionary<string, object?> d:
                if (index is string k) return d.TryGetValue(k, out var v) ? v : JinjaUndefined.Instance;
                return JinjaUndefined.Instance;
            case JinjaNamespace ns:
                return index is string k2 && ns.Attrs.TryGetValue(k2, out var nv) ? nv : JinjaUndefined.Instance;
            case List<object?> l:
            {
                if (index is string name) return ListMethod(n, l, name);
                if (index is not (long or bool)) throw Error(n, $"list index must be an integer, got a {JinjaValues.TypeName(index)}");
                long i = index is bool bi ? (bi ? 1 : 0) : (long)index;
                if (i < 0) i += l.Count;
                return i >= 0 && i < l.Count ? l[(int)i] : JinjaUndefined.Instance;
            }
            case string s:
            {
                if (index is string name) return StringMethod(n, s, name);
                if (index is not long i) throw Error(n, $"string index must be an integer, got a {JinjaValues.TypeName(index)}");
                var chars = EnumerateChars(s);
                if (i < 0) i += chars.Count;
                return i >= 0 && i < chars.Count ? chars[(int)i] : JinjaUndefined.Instance;
            }
            case JinjaUndefined:
                throw Error(n, $"cannot index an undefined value with {JinjaValues.Repr(index)}");
            case null:
                throw Error(n, $"cannot index none with {JinjaValues.Repr(index)}");
            default:
                throw Error(n, $"cannot index a {JinjaValues.TypeName(target)}");
        }
    }

    private object? Slice(Node n, object? target, object? start, object? stop, object? step)
    {
        long? Arg(object? a, string what) => a switch
        {
            null or JinjaUndefined => null,
            long l => l,
            _ => throw Error(n, $"slice {what} must be an integer, got a {JinjaValues.TypeName(a)}"),
        };
        long st = Arg(step, "step") ?? 1;
        if (st == 0) throw Error(n, "slice step cannot be zero");
        List<object?> items = target switch
        {
            List<object?> l => l,
            string s => EnumerateChars(s),
            _ => throw Error(n, $"cannot slice a {JinjaValues.TypeName(target)}"),
        };
        int len = items.Count;
        // Python's slice.indices()
        long lo, hi;
        long? a0 = Arg(start, "start"), b0 = Arg(stop, "stop");
        if (st > 0)
        {
            lo = a0 is long a ? (a < 0 ? Math.Max(a + len, 0) : Math.Min(a, len)) : 0;
            hi = b0 is long b ? (b < 0 ? Math.Max(b + len, 0) : Math.Min(b, len)) : len;
        }
        else
        {
            lo = a0 is long a ? (a < 0 ? Math.Max(a + len, -1) : Math.Min(a, len - 1)) : len - 1;
            hi = b0 is long b ? (b < 0 ? Math.Max(b + len, -1) : Math.Min(b, len - 1)) : -1;
        }
        var result = new List<object?>();
        if (st > 0) for (long i = lo; i < hi; i += st) result.Add(items[(int)i]);
        else for (long i = lo; i > hi; i += st) result.Add(items[(int)i]);
        return target is string ? string.Concat(result.Cast<string>()) : result;
    }

    private object? Binary(BinaryExpr b, object? l, object? r)
    {
        switch (b.Op)
        {
            case "==": return JinjaValues.ValueEquals(l, r);
            case "!=": return !JinjaValues.ValueEquals(l, r);
            case "~": return JinjaValues.ToStr(l) + JinjaValues.ToStr(r);
            case "in": return Contains(b, r, l);
            case "not in": return !Contains(b, r, l);
        }
        if (l is JinjaUndefined || r is JinjaUndefined)
            throw Error(b, $"operator '{b.Op}' used on an undefined value");
        if (JinjaValues.IsNumber(l) && JinjaValues.IsNumber(r))
        {
            bool isInt = l is long or bool && r is long or bool;
            double x = JinjaValues.ToDouble(l), y = JinjaValues.ToDouble(r);
            long xi = isInt ? (l is bool lb ? (lb ? 1 : 0) : (long)l!) : 0, yi = isInt ? (r is bool rb ? (rb ? 1 : 0) : (long)r!) : 0;
            switch (b.Op)
            {
                case "+": return isInt ? (object)checked(xi + yi) : x + y;
                case "-": return isInt ? (object)checked(xi - yi) : x - y;
                case "*": return isInt ? (object)checked(xi * yi) : x * y;
                case "/":
                    if (y == 0) throw Error(b, "division by zero");
                    return x / y;
                case "//":
                    if (y == 0) throw Error(b, "division by zero");
                    return isInt ? (object)FloorDiv(xi, yi) : Math.Floor(x / y);
                case "%":
                    if (y == 0) throw Error(b, "modulo by zero");
                    if (isInt) { long m = xi % yi; if (m != 0 && (m < 0) != (yi < 0)) m += yi; return m; }
                    { double m = x % y; if (m != 0 && (m < 0) != (y < 0)) m += y; return m; }
                case "**":
                    if (isInt && yi >= 0) return IntPow(xi, yi);
                    return Math.Pow(x, y);
                case "<": return x < y;
                case ">": return x > y;
                case "<=": return x <= y;
                case ">=": return x >= y;
            }
        }
        if (l is string ls && r is string rs)
        {
            int c = string.CompareOrdinal(ls, rs);
            switch (b.Op)
            {
                case "+": return ls + rs;
                case "<": return c < 0;
                case ">": return c > 0;
                case "<=": return c <= 0;
                case ">=": return c >= 0;
            }
        }
        if (b.Op == "+" && l is List<object?> la && r is List<object?> ra)
        {
            _budget.CheckLength(b, (long)la.Count + ra.Count, "a list");
            return la.Concat(ra).ToList();
        }
        if (b.Op == "*" && (l is string || r is string) && (l is long || r is long))
        {
            string s = l as string ?? (string)r!;
            long k = l is long lk ? lk : (long)r!;
            if (k > 0) _budget.CheckLength(b, (long)s.Length * Math.Min(k, int.MaxValue), "'string' * n");
            return k <= 0 ? "" : string.Concat(Enumerable.Repeat(s, (int)k));
        }
        if (b.Op == "+" && (l is string || r is string))
            throw Error(b, $"cannot add a {JinjaValues.TypeName(l)} and a {JinjaValues.TypeName(r)} (use ~ to concatenate as text)");
        throw Error(b, $"operator '{b.Op}' is not defined for a {JinjaValues.TypeName(l)} and a {JinjaValues.TypeName(r)}");
    }

    private bool Contains(Node n, object? container, object? item) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal)
            : throw Error(n, $"'in <string>' needs a string on the left, got a {JinjaValues.TypeName(item)}"),
        List<object?> l => CountedAny(n, l, item),
        Dictionary<string, object?> d => item is string k && d.ContainsKey(k),
        JinjaNamespace ns => item is string k2 && ns.Attrs.ContainsKey(k2),
        JinjaUndefined => false,
        _ => throw Error(n, $"'in' is not defined for a {JinjaValues.TypeName(container)}"),
    };

    private bool CountedAny(Node n, List<object?> l, object? item)
    {
        _budget.Step(n, l.Count);
        return l.Any(x => JinjaValues.ValueEquals(x, item));
    }

    /// <summary>Integer power by squaring; a result past 64 bits is an OverflowException (Python would go on in
    /// big integers, which no chat template needs).</summary>
    private static long IntPow(long x, long y)
    {
        long result = 1;
        while (y > 0)
        {
            if ((y & 1) != 0) result = checked(result * x);
            y >>= 1;
            if (y > 0) x = checked(x * x);
        }
        return result;
    }

    private static long FloorDiv(long a, long b)
    {
        long q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
        return q;
    }
}
