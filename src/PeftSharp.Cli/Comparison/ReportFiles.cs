using PeftSharp.IO;

namespace PeftSharp.Cli.Comparison;

/// <summary>Writes report.md, report.json and report.html into the comparison's output folder.</summary>
internal static class ReportFiles
{
    public sealed record Paths(string Markdown, string Json, string Html);

    public static Paths Write(ComparisonReport report, string dir)
    {
        Directory.CreateDirectory(dir);
        var p = new Paths(Path.Combine(dir, "report.md"), Path.Combine(dir, "report.json"), Path.Combine(dir, "report.html"));
        AtomicFile.WriteAllText(p.Markdown, MarkdownReport.Render(report));
        AtomicFile.WriteAllText(p.Json, JsonReport.Render(report));
        AtomicFile.WriteAllText(p.Html, HtmlReport.Render(report));
        return p;
    }
}
