using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftSharp.Templates;

/// <summary>An undefined variable or missing key/attribute: renders as "", is falsy, "is defined" is false.</summary>
internal sealed class JinjaUndefined
{
    public static readonly JinjaUndefined Instance = new();
    private JinjaUndefined() { }
    public override string ToString() => "";
}

/// <summary>The object made by <c>namespace(...)</c>: attributes assignable with <c>{% set ns.x = ... %}</c>.</summary>
internal sealed class JinjaNamespace
{
    public readonly Dictionary<string, object?> Attrs = new(StringComparer.Ordinal);
}

/// <summary>A callable value: global functions, macros, bound string/dict methods.</summary>
internal delegate object? JinjaFunction(List<object?> args, Dictionary<string, object?> kwargs);

/// <summary>
/// The dynamic value model: null (Python None), <see cref="JinjaUndefined"/>, string, long, double, bool,
/// List&lt;object?&gt; (lists and tuples), Dictionary&lt;string, object?&gt; (insertion-ordered), namespace, function.
/// Helpers convert from JSON nodes and plain C# objects and implement Python-like truthiness, equality and str().
/// </summary>
internal static class JinjaValues
{
    public static object? FromJson(JsonNode? node)
    {
        switch (node)
        {
            case null: return null;
            case JsonObject o:
            {
                var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, v) in o) d[k] = FromJson(v);
                return d;
            }
            case JsonArray a:
            {
                var l = new List<object?>(a.Count);
                foreach (var v in a) l.Add(FromJson(v));
                return l;
            }
            case JsonValue v:
                switch (v.GetValueKind())
                {
                    case JsonValueKind.String: return v.GetValue<string>();
                    case JsonValueKind.True: return true;
                    case JsonValueKind.False: return false;
                    case JsonValueKind.Number:
                        if (v.TryGetValue(out long l)) return l;
                        if (v.TryGetValue(out int i)) return (long)i;
                        if (v.TryGetValue(out JsonElement e)) return FromJsonElement(e);
                        return v.GetValue<double>();
                    default: return null;
                }
            default: return null;
        }
    }

    private static object? FromJsonElement(JsonElement el) => el.ValueKind switch
    {
        JsonValueKind.String => el.GetString(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.Number => el.TryGetInt64(out long l) ? (object)l : el.GetDouble(),
        JsonValueKind.Object => FromJson(JsonNode.Parse(el.GetRawText())),
        JsonValueKind.Array => FromJson(JsonNode.Parse(el.GetRawText())),
        _ => null,
    };

    /// <summary>Converts C# values (strings, numbers, bools, dictionaries, enumerables, JSON nodes, ChatMessage) to the value model.</summary>
    public static object? FromClr(object? v)
    {
        switch (v)
        {
            case null: return null;
            case JinjaUndefined or string or bool or long or double or JinjaNamespace or JinjaFunction: return v;
            case int i: return (long)i;
            case short s: return (long)s;
            case uint u: return (long)u;
            case float f: return (double)f;
            case decimal m: return (double)m;
            case JsonNode n: return FromJson(n);
            case JsonElement e: return FromJsonElement(e);
            case ChatMessage m:
            {
                var d = new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = m.Role, ["content"] = m.Content };
                if (m.Extra != null) foreach (var (k, x) in m.Extra) d[k] = FromClr(x);
                return d;
            }
            case IDictionary dict:
            {
                var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (DictionaryEntry de in dict) d[Convert.ToString(de.Key, CultureInfo.InvariantCulture)!] = FromClr(de.Value);
                return d;
            }
            case IEnumerable<KeyValuePair<string, object?>> kvs:
            {
                var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, x) in kvs) d[k] = FromClr(x);
                return d;
            }
            case IEnumerable e:
            {
                var l = new List<object?>();
                foreach (var x in e) l.Add(FromClr(x));
                return l;
            }
            default:
                throw new PeftException($"chat template: cannot pass a value of type {v.GetType().Name} to a template");
        }
    }

    public static bool Truthy(object? v) => v switch
    {
        null or JinjaUndefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        Dictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "none",
        JinjaUndefined => "undefined",
        string => "string",
        bool => "boolean",
        long => "integer",
        double => "float",
        List<object?> => "list",
        Dictionary<string, object?> => "dict",
        JinjaNamespace => "namespace",
        JinjaFunction => "function",
        _ => v.GetType().Name,
    };

    public static bool IsNumber(object? v) => v is long or double or bool;

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new InvalidOperationException(),
    };

    /// <summary>Python equality: numbers by value (1 == 1.0), strings ordinal, lists and dicts element-wise.</summary>
    public static bool ValueEquals(object? a, object? b)
    {
        long work = 0;
        return ValueEquals(a, b, 0, ref work);
    }

    private static bool ValueEquals(object? a, object? b, int depth, ref long work)
    {
        if (++work > JinjaLimits.MaxCompareItems)
            throw new PeftException($"chat template: comparing two values visited more than {JinjaLimits.MaxCompareItems:N0} items");
        Guard(depth, 0);
        if (a is null or JinjaUndefined || b is null or JinjaUndefined)
            return (a is null && b is null) || (a is JinjaUndefined && b is JinjaUndefined);
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a) == ToDouble(b);
        if (a is string sa && b is string sb) return string.Equals(sa, sb, StringComparison.Ordinal);
        if (a is List<object?> la && b is List<object?> lb)
        {
            if (la.Count != lb.Count) return false;
            for (int i = 0; i < la.Count; i++) if (!ValueEquals(la[i], lb[i], depth + 1, ref work)) return false;
            return true;
        }
        if (a is Dictionary<string, object?> da && b is Dictionary<string, object?> db)
        {
            if (da.Count != db.Count) return false;
            foreach (var (k, v) in da) if (!db.TryGetValue(k, out var w) || !ValueEquals(v, w, depth + 1, ref work)) return false;
            return true;
        }
        return ReferenceEquals(a, b);
    }

    /// <summary>Python str(): what {{ x }} prints.</summary>
    public static string ToStr(object? v) => v switch
    {
        null => "None",
        JinjaUndefined => "",
        string s => s,
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FormatFloat(d),
        _ => Repr(v),
    };

    /// <summary>Python repr(), used for containers.</summary>
    public static string Repr(object? v)
    {
        var sb = new StringBuilder();
        ReprTo(v, sb, 0);
        return sb.ToString();
    }

    /// <summary>Values can nest (a list inside itself via a namespace, [l, l] doubled 60 times): walks of them stop
    /// at a depth and a size instead of overflowing the stack or running for ever.</summary>
    private static void Guard(int depth, long size)
    {
        if (depth > JinjaLimits.MaxValueDepth)
            throw new PeftException($"chat template: a value is nested deeper than {JinjaLimits.MaxValueDepth} levels (a namespace or list that contains itself?)");
        if (size > JinjaLimits.Default.MaxLength)
            throw new PeftException($"chat template: a value is larger than the limit of {JinjaLimits.Default.MaxLength:N0} characters or items");
    }

    private static void ReprTo(object? v, StringBuilder sb, int depth)
    {
        Guard(depth, sb.Length);
        switch (v)
        {
            case string s:
            {
                char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
                sb.Append(q);
                foreach (char c in s)
                {
                    if (c == q || c == '\\') sb.Append('\\').Append(c);
                    else if (c == '\n') sb.Append("\\n");
                    else if (c == '\r') sb.Append("\\r");
                    else if (c == '\t') sb.Append("\\t");
                    else sb.Append(c);
                }
                sb.Append(q);
                return;
            }
            case List<object?> l:
                sb.Append('[');
                for (int i = 0; i < l.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    ReprTo(l[i], sb, depth + 1);
                }
                sb.Append(']');
                return;
            case Dictionary<string, object?> d:
            {
                sb.Append('{');
                bool first = true;
                foreach (var (k, x) in d)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    ReprTo(k, sb, depth + 1);
                    sb.Append(": ");
                    ReprTo(x, sb, depth + 1);
                }
                sb.Append('}');
                return;
            }
            case JinjaNamespace ns:
                sb.Append("<Namespace ");
                ReprTo(ns.Attrs, sb, depth + 1);
                sb.Append('>');
                return;
            case JinjaFunction:
                sb.Append("<function>");
                return;
            default:
                sb.Append(ToStr(v));
                return;
        }
    }

    public static string FormatFloat(double d)
    {
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        if (double.IsNaN(d)) return "nan";
        if (d == Math.Floor(d) && Math.Abs(d) < 1e16) return d.ToString("0.0", CultureInfo.InvariantCulture);
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        return r.Replace("E+", "e+").Replace("E-", "e-");
    }

    /// <summary>JSON as Python's json.dumps(ensure_ascii=False) writes it (transformers' tojson filter).</summary>
    public static void ToJson(object? v, StringBuilder sb, int? indent, int depth, bool sortKeys)
    {
        Guard(depth, sb.Length);
        switch (v)
        {
            case null or JinjaUndefined: sb.Append("null"); return;
            case bool b: sb.Append(b ? "true" : "false"); return;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); return;
            case double d: sb.Append(double.IsFinite(d) ? FormatFloat(d) : double.IsNaN(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity"); return;
            case string s: JsonString(s, sb); return;
            case List<object?> list:
            {
                if (list.Count == 0) { sb.Append("[]"); return; }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(indent.HasValue ? "," : ", ");
                    NewLine(sb, indent, depth + 1);
                    ToJson(list[i], sb, indent, depth + 1, sortKeys);
                }
                NewLine(sb, indent, depth);
                sb.Append(']');
                return;
            }
            case Dictionary<string, object?> or JinjaNamespace:
            {
                var dict = v as Dictionary<string, object?> ?? ((JinjaNamespace)v).Attrs;
                if (dict.Count == 0) { sb.Append("{}"); return; }
                IEnumerable<KeyValuePair<string, object?>> entries = sortKeys ? dict.OrderBy(kv => kv.Key, StringComparer.Ordinal) : dict;
                sb.Append('{');
                bool first = true;
                foreach (var (k, x) in entries)
                {
                    if (!first) sb.Append(indent.HasValue ? "," : ", ");
                    first = false;
                    NewLine(sb, indent, depth + 1);
                    JsonString(k, sb);
                    sb.Append(": ");
                    ToJson(x, sb, indent, depth + 1, sortKeys);
                }
                NewLine(sb, indent, depth);
                sb.Append('}');
                return;
            }
            default:
                throw new PeftException($"chat template: cannot convert a {TypeName(v)} to JSON");
        }
    }

    private static void NewLine(StringBuilder sb, int? indent, int depth)
    {
        if (indent is int n)
        {
            Guard(0, sb.Length + (long)n * depth);
            sb.Append('\n').Append(' ', n * depth);
        }
    }

    public static void JsonString(string s, StringBuilder sb)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
