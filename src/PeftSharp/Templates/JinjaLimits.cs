using System.Runtime.CompilerServices;

namespace PeftSharp.Templates;

/// <summary>Bounds on one template render, so that a hostile or buggy template (a recursive macro, a loop over
/// range(10**9), 'x' * 10**9) ends with a <see cref="PeftException"/> instead of a stack overflow, a hang or an
/// unbounded allocation. Real chat templates stay far below every default.</summary>
/// <param name="MaxDepth">Nesting of statements, expressions and macro calls while rendering.</param>
/// <param name="MaxSteps">Work units: one per statement, expression, loop item and list element scanned.</param>
/// <param name="MaxLength">Characters of any string (the output included) and items of any list or range.</param>
public sealed record JinjaLimits(int MaxDepth = 600, long MaxSteps = 1_000_000, int MaxLength = 1 << 24)
{
    /// <summary>The limits a render uses unless told otherwise.</summary>
    public static JinjaLimits Default { get; } = new();

    /// <summary>How deep the parser nests blocks, brackets and operators before refusing the template.</summary>
    public const int MaxParseDepth = 200;

    /// <summary>How deep lists, dicts and namespaces may nest when they are printed, compared or turned into JSON.</summary>
    public const int MaxValueDepth = 200;

    /// <summary>How many list and dict items one comparison of two values may visit.</summary>
    public const int MaxCompareItems = 1_000_000;
}

/// <summary>The running count of one render against its <see cref="JinjaLimits"/>.</summary>
internal sealed class JinjaBudget(JinjaLimits limits)
{
    private long _steps;
    private int _depth;

    public JinjaLimits Limits { get; } = limits;

    public void Step(Node n, long units = 1)
    {
        _steps += units;
        if (_steps > Limits.MaxSteps)
            throw new PeftException($"chat template line {n.Line}: rendering took more than {Limits.MaxSteps:N0} steps " +
                                    "(an endless or very large loop?); the template is refused");
    }

    public void Enter(Node n)
    {
        if (++_depth > Limits.MaxDepth || !RuntimeHelpers.TryEnsureSufficientExecutionStack())
            throw new PeftException($"chat template line {n.Line}: nesting or recursion deeper than {Limits.MaxDepth} levels " +
                                    "(a macro that calls itself without end?)");
    }

    public void Exit() => _depth--;

    /// <summary>Refuses a string or list about to be made with <paramref name="length"/> characters or items.</summary>
    public void CheckLength(Node n, long length, string what)
    {
        if (length > Limits.MaxLength)
            throw new PeftException($"chat template line {n.Line}: {what} would hold {length:N0} characters or items, " +
                                    $"more than the limit of {Limits.MaxLength:N0}");
    }

    public object? CheckValue(Node n, object? v)
    {
        switch (v)
        {
            case string s when s.Length > Limits.MaxLength: CheckLength(n, s.Length, "a string"); break;
            case List<object?> l when l.Count > Limits.MaxLength: CheckLength(n, l.Count, "a list"); break;
        }
        return v;
    }
}
