namespace PeftSharp.Templates;

// Syntax tree of the Jinja subset. Every node keeps its template line for error messages.

internal abstract record Node(int Line);

// ---- expressions ----
internal abstract record Expr(int Line) : Node(Line);
internal sealed record LiteralExpr(int Line, object? Value) : Expr(Line);
internal sealed record NameExpr(int Line, string Name) : Expr(Line);
internal sealed record AttrExpr(int Line, Expr Target, string Name) : Expr(Line);
internal sealed record ItemExpr(int Line, Expr Target, Expr Index) : Expr(Line);
internal sealed record SliceExpr(int Line, Expr Target, Expr? Start, Expr? Stop, Expr? Step) : Expr(Line);
internal sealed record CallExpr(int Line, Expr Callee, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Line);
internal sealed record FilterExpr(int Line, Expr Operand, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Line);
internal sealed record TestExpr(int Line, Expr Operand, string Name, List<Expr> Args, bool Negated) : Expr(Line);
internal sealed record UnaryExpr(int Line, string Op, Expr Operand) : Expr(Line);
internal sealed record BinaryExpr(int Line, string Op, Expr Left, Expr Right) : Expr(Line);
internal sealed record CondExpr(int Line, Expr Test, Expr Then, Expr? Else) : Expr(Line);
internal sealed record ListExpr(int Line, List<Expr> Items) : Expr(Line);
internal sealed record DictExpr(int Line, List<(Expr Key, Expr Value)> Items) : Expr(Line);

// ---- statements ----
internal abstract record Stmt(int Line) : Node(Line);
internal sealed record TextStmt(int Line, string Text) : Stmt(Line);
internal sealed record OutputStmt(int Line, Expr Value) : Stmt(Line);
internal sealed record IfStmt(int Line, List<(Expr Test, List<Stmt> Body)> Branches, List<Stmt>? Else) : Stmt(Line);
internal sealed record ForStmt(int Line, List<string> Targets, Expr Iterable, Expr? Filter, List<Stmt> Body, List<Stmt>? Else) : Stmt(Line);
/// <summary>{% set a = x %}, {% set a, b = x %} or {% set ns.attr = x %} (Attr non-null).</summary>
internal sealed record SetStmt(int Line, List<string> Targets, string? Attr, Expr Value) : Stmt(Line);
internal sealed record SetBlockStmt(int Line, string Target, List<Stmt> Body) : Stmt(Line);
internal sealed record MacroStmt(int Line, string Name, List<(string Name, Expr? Default)> Params, List<Stmt> Body) : Stmt(Line);
internal sealed record BreakStmt(int Line) : Stmt(Line);
/// <summary>transformers' {% generation %}...{% endgeneration %}: renders its body and records where it landed.</summary>
internal sealed record GenerationStmt(int Line, List<Stmt> Body) : Stmt(Line);
internal sealed record ContinueStmt(int Line) : Stmt(Line);
