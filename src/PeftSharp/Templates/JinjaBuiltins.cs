using System.Globalization;
using System.Text;

namespace PeftSharp.Templates;

// Global functions, filters, tests and methods of strings/dicts/lists: what real chat templates call, with Python
// (transformers) semantics. Anything else is a PeftException naming the feature and the template line.
internal sealed partial class JinjaInterpreter
{
    private static void AddBuiltins(Dictionary<string, object?> g, JinjaBudget budget)
    {
        g["raise_exception"] = (JinjaFunction)((args, _) =>
            throw new TemplateRaisedException(args.Count > 0 ? JinjaValues.ToStr(args[0]) : "the chat template raised an error"));
        g["namespace"] = (JinjaFunction)((args, kwargs) =>
        {
            var ns = new JinjaNamespace();
            foreach (var a in args)
                if (a is Dictionary<string, object?> d) foreach (var (k, v) in d) ns.Attrs[k] = v;
            foreach (var (k, v) in kwargs) ns.Attrs[k] = v;
            return ns;
        });
        g["dict"] = (JinjaFunction)((args, kwargs) =>
        {
            var d = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var a in args)
                if (a is Dictionary<string, object?> src) foreach (var (k, v) in src) d[k] = v;
            foreach (var (k, v) in kwargs) d[k] = v;
            return d;
        });
        g["range"] = (JinjaFunction)((args, _) =>
        {
            long Int(object? o) => o is long l ? l : throw new PeftException("range() needs integer arguments");
            long start = 0, stop, step = 1;
            if (args.Count == 1) stop = Int(args[0]);
            else if (args.Count >= 2) { start = Int(args[0]); stop = Int(args[1]); if (args.Count > 2) step = Int(args[2]); }
            else throw new PeftException("range() needs 1 to 3 arguments");
            if (step == 0) throw new PeftException("range() step cannot be zero");
            long count = step > 0 ? (stop > start ? ((stop - start - 1) / step) + 1 : 0)
                                  : (start > stop ? ((start - stop - 1) / -step) + 1 : 0);
            if (count > budget.Limits.MaxLength)
                throw new PeftException($"chat template: range() of {count:N0} numbers is more than the limit of {budget.Limits.MaxLength:N0}");
            var list = new List<object?>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step) list.Add(i);
            return list;
        });
        // transformers adds strftime_now(format) (Llama 3.1+ templates put today's date into the system prompt).
        g["strftime_now"] = (JinjaFunction)((args, _) => Strftime(DateTime.Now, args.Count > 0 ? JinjaValues.ToStr(args[0]) : ""));
    }

    private static string Strftime(DateTime t, string fmt)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%' || i + 1 >= fmt.Length) { sb.Append(fmt[i]); continue; }
            char c = fmt[++i];
            var inv = CultureInfo.InvariantCulture;
            sb.Append(c switch
            {
                'd' => t.ToString("dd", inv), 'm' => t.ToString("MM", inv), 'Y' => t.ToString("yyyy", inv), 'y' => t.ToString("yy", inv),
                'b' => t.ToString("MMM", inv), 'B' => t.ToString("MMMM", inv), 'a' => t.ToString("ddd", inv), 'A' => t.ToString("dddd", inv),
                'H' => t.ToString("HH", inv), 'M' => t.ToString("mm", inv), 'S' => t.ToString("ss", inv), 'j' => t.DayOfYear.ToString("000", inv),
                '%' => "%",
                _ => throw new PeftException($"strftime_now: unsupported format code %{c}"),
            });
        }
        return sb.ToString();
    }

    private static string ArgStr(Node n, List<object?> args, int i, string method) =>
        i < args.Count && args[i] is string s ? s : throw Error(n, $"{method}() argument {i + 1} must be a string");

    private static bool IsPySpace(char c) => char.IsWhiteSpace(c) || c is '\x1c' or '\x1d' or '\x1e' or '\x1f';

    private static string PyStrip(string s, string? chars, bool left, bool right)
    {
        int a = 0, b = s.Length;
        Func<char, bool> strip = chars == null ? IsPySpace : c => chars.Contains(c);
        if (left) while (a < b && strip(s[a])) a++;
        if (right) while (b > a && strip(s[b - 1])) b--;
        return s[a..b];
    }

    private object? StringMethod(Node n, string s, string name)
    {
        JinjaFunction? f = name switch
        {
            "strip" or "lstrip" or "rstrip" => (args, _) =>
            {
                string? chars = args.Count > 0 && args[0] is string c ? c : null;
                return PyStrip(s, chars, name != "rstrip", name != "lstrip");
            },
            "startswith" or "endswith" => (args, _) =>
            {
                if (args.Count == 0) throw Error(n, $"{name}() needs an argument");
                var prefixes = args[0] is List<object?> l ? l : [args[0]];
                foreach (var p in prefixes)
                {
                    if (p is not string ps) throw Error(n, $"{name}() arguments must be strings");
                    if (name == "startswith" ? s.StartsWith(ps, StringComparison.Ordinal) : s.EndsWith(ps, StringComparison.Ordinal)) return true;
                }
                return false;
            },
            "split" => (args, kwargs) =>
            {
                object? sep = args.Count > 0 ? args[0] : kwargs.GetValueOrDefault("sep");
                object? maxObj = args.Count > 1 ? args[1] : kwargs.GetValueOrDefault("maxsplit");
                long max = maxObj is long m ? m : -1;
                var result = new List<object?>();
                if (sep is null or JinjaUndefined)
                {
                    int i = 0;
                    while (true)
                    {
                        while (i < s.Length && IsPySpace(s[i])) i++;
                        if (i >= s.Length) break;
                        if (max >= 0 && result.Count >= max) { result.Add(PyStrip(s[i..], null, false, true)); break; }
                        int st = i;
                        while (i < s.Length && !IsPySpace(s[i])) i++;
                        result.Add(s[st..i]);
                    }
                    return result;
                }
                if (sep is not string sp) throw Error(n, "split() separator must be a string");
                if (sp.Length == 0) throw Error(n, "split() separator is empty");
                int pos = 0;
                while (max < 0 || result.Count < max)
                {
                    int k = s.IndexOf(sp, pos, StringComparison.Ordinal);
                    if (k < 0) break;
                    result.Add(s[pos..k]);
                    pos = k + sp.Length;
                }
                result.Add(s[pos..]);
                return result;
            },
            "replace" => (args, kwargs) =>
            {
                string o = ArgStr(n, args, 0, "replace"), w = ArgStr(n, args, 1, "replace");
                object? cnt = args.Count > 2 ? args[2] : kwargs.GetValueOrDefault("count");
                return PyReplace(n, s, o, w, cnt is long c ? c : -1);
            },
            "upper" => (_, _) => s.ToUpperInvariant(),
            "lower" => (_, _) => s.ToLowerInvariant(),
            "title" => (_, _) => Title(s),
            "capitalize" => (_, _) => Capitalize(s),
            "find" => (args, _) => (long)s.IndexOf(ArgStr(n, args, 0, "find"), StringComparison.Ordinal),
            "count" => (args, _) =>
            {
                string sub = ArgStr(n, args, 0, "count");
                if (sub.Length == 0) return (long)s.Length + 1;
                long c = 0;
                for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal)) c++;
                return c;
            },
            "join" => (args, _) => string.Join(s, (args.Count > 0 && args[0] is List<object?> l ? l : []).Select(JinjaValues.ToStr)),
            "isdigit" => (_, _) => s.Length > 0 && s.All(char.IsDigit),
            "isspace" => (_, _) => s.Length > 0 && s.All(IsPySpace),
            _ => null,
        };
        return f ?? throw Error(n, $"unsupported template feature: string method '{name}'");
    }

    private string PyReplace(Node n, string s, string old, string with, long count)
    {
        long matches = old.Length == 0 ? s.Length + 1L : CountOccurrences(s, old);
        if (count >= 0) matches = Math.Min(matches, count);
        _budget.CheckLength(n, s.Length + matches * (with.Length - (long)old.Length), "the result of replace()");
        if (count < 0) return old.Length == 0 ? InsertEverywhere(s, with) : s.Replace(old, with, StringComparison.Ordinal);
        var sb = new StringBuilder();
        int pos = 0;
        for (long done = 0; done < count; done++)
        {
            int k = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (k < 0 || old.Length == 0) break;
            sb.Append(s, pos, k - pos).Append(with);
            pos = k + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    private static long CountOccurrences(string s, string sub)
    {
        long c = 0;
        for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal)) c++;
        return c;
    }

    private static string InsertEverywhere(string s, string with)
    {
        var sb = new StringBuilder(with);
        foreach (char c in s) sb.Append(c).Append(with);
        return sb.ToString();
    }

    private static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevLetter = false;
        foreach (char c in s)
        {
            sb.Append(prevLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevLetter = char.IsLetter(c);
        }
        return sb.ToString();
    }

    private static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    private static object? DictMethod(Node n, Dictionary<string, object?> d, string name) => name switch
    {
        "items" => (JinjaFunction)((_, _) => d.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList()),
        "keys" => (JinjaFunction)((_, _) => d.Keys.Select(k => (object?)k).ToList()),
        "values" => (JinjaFunction)((_, _) => d.Values.ToList()),
        "get" => (JinjaFunction)((args, _) =>
            args.Count > 0 && args[0] is string k && d.TryGetValue(k, out var v) ? v : args.Count > 1 ? args[1] : null),
        _ => null,
    };

    private static object? ListMethod(Node n, List<object?> l, string name) =>
        throw Error(n, $"unsupported template feature: list attribute or method '{name}'");

    private static long Length(Node n, object? v) => v switch
    {
        string s => s.EnumerateRunes().Count(),
        List<object?> l => l.Count,
        Dictionary<string, object?> d => d.Count,
        JinjaUndefined => 0,
        _ => throw Error(n, $"a {JinjaValues.TypeName(v)} has no length"),
    };

    private object? ApplyFilter(Node n, string name, object? v, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Arg(int i, string kw, object? def = null) => i < args.Count ? args[i] : kwargs.TryGetValue(kw, out var x) ? x : def;
        switch (name)
        {
            case "trim":
                return PyStrip(JinjaValues.ToStr(v), Arg(0, "chars") as string, true, true);
            case "length" or "count":
                return Length(n, v);
            case "upper": return JinjaValues.ToStr(v).ToUpperInvariant();
            case "lower": return JinjaValues.ToStr(v).ToLowerInvariant();
            case "title": return Title(JinjaValues.ToStr(v));
            case "capitalize": return Capitalize(JinjaValues.ToStr(v));
            case "string": return JinjaValues.ToStr(v);
            case "safe": return v;
            case "tojson":
            {
                var sb = new StringBuilder();
                long? indentArg = Arg(0, "indent") is long ind ? ind : null;
                if (indentArg is long w0) _budget.CheckLength(n, w0, "tojson(indent=...)");
                int? indent = indentArg is long w1 ? (int)Math.Max(0, w1) : null;
                JinjaValues.ToJson(v, sb, indent, 0, JinjaValues.Truthy(Arg(1, "sort_keys", false)));
                return sb.ToString();
            }
            case "default" or "d":
            {
                var def = Arg(0, "default_value", "");
                bool boolean = JinjaValues.Truthy(Arg(1, "boolean", false));
                return v is JinjaUndefined || (boolean && !JinjaValues.Truthy(v)) ? def : v;
            }
            case "items":
                if (v is Dictionary<string, object?> d) return d.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList();
                if (v is JinjaUndefined) return new List<object?>();
                throw Error(n, $"filter 'items' needs a dict, got a {JinjaValues.TypeName(v)}");
            case "list": return Iterate(n, v);
            case "first": { var l = Iterate(n, v); return l.Count > 0 ? l[0] : JinjaUndefined.Instance; }
            case "last": { var l = Iterate(n, v); return l.Count > 0 ? l[^1] : JinjaUndefined.Instance; }
            case "reverse":
                if (v is string rs) return string.Concat(EnumerateChars(rs).Cast<string>().Reverse());
                { var l = Iterate(n, v); l.Reverse(); return l; }
            case "join":
            {
                string sep = Arg(0, "d", "") as string ?? "";
                var attr = Arg(1, "attribute") as string;
                var items = Iterate(n, v);
                return string.Join(sep, items.Select(x => JinjaValues.ToStr(attr == null ? x : GetAttr(n, x, attr))));
            }
            case "replace":
                return PyReplace(n, JinjaValues.ToStr(v), Arg(0, "old") as string ?? throw Error(n, "replace needs strings"),
                    Arg(1, "new") as string ?? throw Error(n, "replace needs strings"), Arg(2, "count") is long c ? c : -1);
            case "int":
                return v switch
                {
                    long l => (object)l, double dd => (long)Math.Truncate(dd), bool bb => bb ? 1L : 0L,
                    string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long p) => p,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double p) => (long)Math.Truncate(p),
                    _ => Arg(0, "default", 0L),
                };
            case "float":
                return v switch
                {
                    long l => (object)(double)l, double dd => dd, bool bb => bb ? 1.0 : 0.0,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double p) => p,
                    _ => Arg(0, "default", 0.0),
                };
            case "abs":
                return v switch { long l => (object)Math.Abs(l), double dd => (object)Math.Abs(dd), _ => throw Error(n, "abs needs a number") };
            case "indent":
            {
                long width = Arg(0, "width", 4L) is long w ? w : 4;
                bool first = JinjaValues.Truthy(Arg(1, "first", false));
                bool blank = JinjaValues.Truthy(Arg(2, "blank", false));
                _budget.CheckLength(n, width, "indent()");
                string pad = new(' ', (int)Math.Max(0, width));
                var lines = JinjaValues.ToStr(v).Split('\n');
                for (int i = 0; i < lines.Length; i++)
                {
                    if (i == 0 && !first) continue;
                    if (lines[i].Length == 0 && !blank) continue;
                    lines[i] = pad + lines[i];
                }
                return string.Join("\n", lines);
            }
            case "map":
            {
                var items = Iterate(n, v);
                if (kwargs.TryGetValue("attribute", out var attrObj) && attrObj is string attr)
                    return items.Select(x => GetAttr(n, x, attr) is JinjaUndefined && kwargs.TryGetValue("default", out var dv) ? dv : GetAttr(n, x, attr)).ToList();
                if (args.Count > 0 && args[0] is string filterName)
                    return items.Select(x => ApplyFilter(n, filterName, x, args.Skip(1).ToList(), [])).ToList();
                throw Error(n, "filter 'map' needs attribute=... or a filter name");
            }
            case "selectattr" or "rejectattr" or "select" or "reject":
            {
                bool byAttr = name.EndsWith("attr");
                bool keep = name.StartsWith("select");
                var items = Iterate(n, v);
                int k = 0;
                string? attr = null;
                if (byAttr) attr = args.Count > 0 && args[0] is string a ? a : throw Error(n, $"filter '{name}' needs an attribute name");
                if (byAttr) k = 1;
                string? test = args.Count > k ? args[k] as string : null;
                var testArgs = args.Skip(k + 1).ToList();
                var result = new List<object?>();
                foreach (var x in items)
                {
                    var val = attr != null ? GetAttr(n, x, attr) : x;
                    bool t = test == null ? JinjaValues.Truthy(val) : ApplyTest(n, test, val, testArgs);
                    if (t == keep) result.Add(x);
                }
                return result;
            }
            case "unique":
            {
                var result = new List<object?>();
                foreach (var x in Iterate(n, v))
                {
                    _budget.Step(n, result.Count);
                    if (!result.Any(y => JinjaValues.ValueEquals(x, y))) result.Add(x);
                }
                return result;
            }
            case "round":
            {
                long prec = Arg(0, "precision", 0L) is long p ? p : 0;
                double x = JinjaValues.IsNumber(v) ? JinjaValues.ToDouble(v) : throw Error(n, "round needs a number");
                return Math.Round(x, (int)prec, MidpointRounding.AwayFromZero);
            }
            default:
                throw Error(n, $"unsupported template feature: filter '{name}'");
        }
    }

    private bool ApplyTest(Node n, string name, object? v, List<object?> args)
    {
        object? A0() => args.Count > 0 ? args[0] : throw Error(n, $"test '{name}' needs an argument");
        switch (name)
        {
            case "defined": return v is not JinjaUndefined;
            case "undefined": return v is JinjaUndefined;
            case "none": return v is null;
            case "string": return v is string;
            case "number": return v is long or double;
            case "integer": return v is long;
            case "float": return v is double;
            case "boolean": return v is bool;
            case "true": return v is true;
            case "false": return v is false;
            case "mapping": return v is Dictionary<string, object?>;
            case "sequence": return v is List<object?> or string or Dictionary<string, object?>;
            case "iterable": return v is List<object?> or string or Dictionary<string, object?>;
            case "callable": return v is JinjaFunction;
            case "odd": return v is long o && o % 2 != 0;
            case "even": return v is long e && e % 2 == 0;
            case "divisibleby": return v is long dv && A0() is long dd && dd != 0 && dv % dd == 0;
            case "equalto" or "eq" or "==" or "sameas": return JinjaValues.ValueEquals(v, A0());
            case "ne" or "!=": return !JinjaValues.ValueEquals(v, A0());
            case "in": return Contains(n, A0(), v);
            case "lower": return v is string ls && ls == ls.ToLowerInvariant();
            case "upper": return v is string us && us == us.ToUpperInvariant();
            case "gt" or ">": return Compare(n, v, A0()) > 0;
            case "ge" or ">=": return Compare(n, v, A0()) >= 0;
            case "lt" or "<": return Compare(n, v, A0()) < 0;
            case "le" or "<=": return Compare(n, v, A0()) <= 0;
            default:
                throw Error(n, $"unsupported template feature: test 'is {name}'");
        }
    }

    private static int Compare(Node n, object? a, object? b)
    {
        if (JinjaValues.IsNumber(a) && JinjaValues.IsNumber(b)) return JinjaValues.ToDouble(a).CompareTo(JinjaValues.ToDouble(b));
        if (a is string sa && b is string sb) return string.CompareOrdinal(sa, sb);
        throw Error(n, $"cannot compare a {JinjaValues.TypeName(a)} with a {JinjaValues.TypeName(b)}");
    }
}
