using System.Text.Json;
using System.Xml.Linq;
using PeftSharp.Cli.Comparison;

namespace PeftSharp.Tests.Comparison;

/// <summary>The three report files from synthetic results (no training).</summary>
public class ReportRenderingTests
{
    [Fact]
    public void Html_is_self_contained_with_labelled_charts_table_and_claims()
    {
        var report = ComparisonFixtures.TypicalReport();
        string html = HtmlReport.Render(report);
        Assert.StartsWith("<!DOCTYPE html>", html);
        // Self-contained: no scripts, no external resources.
        Assert.DoesNotContain("<script", html);
        Assert.DoesNotContain("src=", html);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotContain("url(", html);
        Assert.DoesNotContain("http://", html.Replace("xmlns=\"http://www.w3.org/2000/svg\"", ""));
        Assert.DoesNotContain("https://", html);

        // Each chart is well-formed SVG with its title, and the loss chart has one series and legend entry per method.
        foreach (var (id, title) in new[] { (HtmlReport.LossChartId, HtmlReport.LossChartTitle), (HtmlReport.MemoryChartId, HtmlReport.MemoryChartTitle),
                     (HtmlReport.SpeedChartId, HtmlReport.SpeedChartTitle), (HtmlReport.FrozenChartId, HtmlReport.FrozenChartTitle) })
        {
            var svg = Svg(html, id);
            XNamespace ns = "http://www.w3.org/2000/svg";
            Assert.Equal(title, svg.Element(ns + "title")!.Value);
            Assert.Contains(svg.Descendants(ns + "text"), t => t.Value == title);
        }
        var loss = Svg(html, HtmlReport.LossChartId);
        XNamespace s = "http://www.w3.org/2000/svg";
        var legend = loss.Descendants(s + "text").Where(t => (string?)t.Attribute("class") == "legend-label").Select(t => t.Value).ToList();
        Assert.Equal(["full", "lora", "dora", "qlora", "qdora (failed)"], legend);
        Assert.Equal(4, loss.Descendants(s + "polyline").Count());   // qdora has no curve
        var qloraLine = loss.Descendants(s + "g").Single(g => (string?)g.Attribute("data-method") == "qlora").Element(s + "polyline")!;
        Assert.Equal("7 4", (string?)qloraLine.Attribute("stroke-dasharray"));   // quantized variants dashed
        var loraLine = loss.Descendants(s + "g").Single(g => (string?)g.Attribute("data-method") == "lora").Element(s + "polyline")!;
        Assert.Null(loraLine.Attribute("stroke-dasharray"));
        Assert.Equal(20, ((string)loraLine.Attribute("points")!).Split(' ').Length);
        var axisLabels = loss.Descendants(s + "text").Where(t => (string?)t.Attribute("class") == "axis-label").Select(t => t.Value).ToList();
        Assert.Equal(["optimizer step", "train loss (log scale)"], axisLabels);
        var memBars = Svg(html, HtmlReport.MemoryChartId).Descendants(s + "text").Where(t => (string?)t.Attribute("class") == "bar-value").Select(t => t.Value).ToList();
        Assert.Equal(["400 MiB", "300 MiB", "310 MiB", "200 MiB", "failed"], memBars);

        // Table rows and claims.
        Assert.Contains("<table id=\"results\">", html);
        Assert.Equal(5, CountOf(html, "<tr>") + CountOf(html, "<tr class=\"failed\">") - 1);
        Assert.Contains("QLoRA memory reduction vs LoRA: <span class=\"verdict agrees\">agrees</span>", html);
        Assert.Contains("Claim (“Head-to-head comparison: QLoRA vs Standard LoRA”)", html);   // cited by title, not file name
        Assert.DoesNotContain(".txt", html);
        Assert.Contains("full uses learning rate 1e-4 instead of 3e-3", html);
        // Error text is escaped.
        Assert.Contains("&lt;expected lora, dora or full&gt; &amp; more", html);
        Assert.DoesNotContain("<expected", html);
    }

    [Fact]
    public void Markdown_has_the_table_failures_and_claims()
    {
        string md = MarkdownReport.Render(ComparisonFixtures.TypicalReport());
        Assert.Contains("| method | status | learning rate |", md);
        Assert.Contains("| lora | trained | 2e-4 | 20,000 | 2.0 % | 3.81 MiB | 300 MiB | 1000 | 12.5 s | 1.9000 | 2.0000 | 7.39 | 0.0 % → 45.0 % | 0.076 MiB |", md);
        Assert.Contains("| qdora | FAILED |", md);
        Assert.Contains("- **qdora**: `error: method \"qdora\" is not supported", md);
        Assert.Contains("### LoRA speed over QLoRA: **inconclusive**", md);   // +42.9 % against 30 % assumed throughput noise per run
        // DoRA, one seed: a 2.5 % lower loss, 2 points of exact match and +25 % time per token are all within the assumed noise.
        Assert.Contains("### DoRA above LoRA: **inconclusive**", md);
        Assert.Contains("- Ours, eval loss (**inconclusive**): LoRA 2.0000, DoRA 1.9500", md);
        Assert.Contains("- Ours, overhead (**inconclusive**): DoRA +25.0 % time per token", md);
        Assert.Contains("an untitled article comparing LoRA, QLoRA, DoRA and QDoRA", md);
        Assert.DoesNotContain(".txt", md);
        Assert.Contains("One seed (42) per method", md);
    }

    [Fact]
    public void Json_holds_every_measurement_and_nulls_for_a_failed_method()
    {
        using var doc = JsonDocument.Parse(JsonReport.Render(ComparisonFixtures.TypicalReport()));
        var results = doc.RootElement.GetProperty("results");
        Assert.Equal(5, results.GetArrayLength());
        var lora = results[1];
        Assert.Equal("lora", lora.GetProperty("method").GetString());
        Assert.Equal(300, lora.GetProperty("peak_rss_mib").GetDouble());
        Assert.Equal(20, lora.GetProperty("train_loss").GetArrayLength());
        Assert.Equal(1000, lora.GetProperty("tokens_per_second").GetDouble());
        var qdora = results[4];
        Assert.Equal("failed", qdora.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, qdora.GetProperty("peak_rss_mib").ValueKind);
        Assert.StartsWith("error: method", qdora.GetProperty("error").GetString());
        Assert.Equal(4, doc.RootElement.GetProperty("claims").GetArrayLength());
        Assert.Equal(3e-4, doc.RootElement.GetProperty("settings").GetProperty("learning_rate_overrides").GetProperty("full").GetDouble());
        Assert.Equal(RunNoise.TokensPerSecondRelative, doc.RootElement.GetProperty("noise").GetProperty("tokens_per_second_relative").GetDouble());
    }

    [Fact]
    public void Plain_table_aligns_columns_and_lists_failures()
    {
        string text = ResultTable.PlainText(ComparisonFixtures.TypicalReport());
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("method", lines[0]);
        int col = lines[0].IndexOf("peak RSS", StringComparison.Ordinal) + "peak RSS".Length;
        Assert.Equal("300 MiB", lines[3][(col - 7)..col]);   // right-aligned under its header
        Assert.Contains(lines, l => l.StartsWith("qdora failed: error: method"));
    }

    [Fact]
    public void Ticks_are_round_and_cover_the_range()
    {
        Assert.Equal([0, 5, 10, 15, 20], SvgCharts.Ticks(1, 20, 6, integer: true));
        var t = SvgCharts.Ticks(1.93, 4.12, 6, integer: false);
        Assert.True(t[0] <= 1.93 && t[^1] >= 4.12);
        Assert.Equal(0.5, t[1] - t[0], 12);
        var flat = SvgCharts.Ticks(3, 3, 6, integer: false);   // a constant series still gets an axis around it
        Assert.True(flat.Length >= 2 && flat[0] < 3 && flat[^1] > 3);
    }

    [Fact]
    public void Log_ticks_are_round_cover_the_range_and_fall_back_to_even_ticks_when_narrow()
    {
        Assert.Equal([0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10], SvgCharts.LogTicks(0.04, 8.2));
        Assert.Equal([1, 2, 3, 5], SvgCharts.LogTicks(1.93, 4.12));
        var narrow = SvgCharts.LogTicks(2.0, 2.1);
        Assert.True(narrow.Length >= 3 && narrow[0] <= 2.0 && narrow[^1] >= 2.1, string.Join(",", narrow));
    }

    [Fact]
    public void Loss_charts_use_a_log_axis_and_the_eval_and_task_charts_are_drawn()
    {
        string html = HtmlReport.Render(ComparisonFixtures.TypicalReport());
        XNamespace s = "http://www.w3.org/2000/svg";
        var loss = Svg(html, HtmlReport.LossChartId);
        // Tick labels of the value axis: equal ratios sit at equal distances (a log axis), so 1 → 2 spans what 2 → 4 would.
        var ticks = loss.Descendants(s + "g").Single(g => (string?)g.Attribute("class") == "axis y-axis").Elements(s + "text")
            .Where(t => t.Attribute("class") == null)
            .Select(t => (Value: double.Parse(t.Value, System.Globalization.CultureInfo.InvariantCulture), Y: double.Parse((string)t.Attribute("y")!, System.Globalization.CultureInfo.InvariantCulture)))
            .ToList();
        Assert.True(ticks.Count >= 3);
        double perDecade = (ticks[0].Y - ticks[^1].Y) / Math.Log10(ticks[^1].Value / ticks[0].Value);
        foreach (var t in ticks) Assert.Equal(ticks[0].Y - perDecade * Math.Log10(t.Value / ticks[0].Value), t.Y, 1);
        var eval = Svg(html, HtmlReport.EvalLossChartId);
        Assert.Equal(HtmlReport.EvalLossChartTitle, eval.Element(s + "title")!.Value);
        Assert.Equal(8, eval.Descendants(s + "circle").Count());   // two eval points for each of the four methods that ran
        var task = Svg(html, HtmlReport.TaskChartId).Descendants(s + "text").Where(t => (string?)t.Attribute("class") == "bar-value").Select(t => t.Value).ToList();
        Assert.Equal(["50.0 % (before 0.0 %)", "45.0 % (before 0.0 %)", "47.0 % (before 0.0 %)", "44.0 % (before 0.0 %)", "failed"], task);
        Assert.Contains("One seed (42) per method", html);
        // One seed: the bars carry the assumed one-run noise as dashed whiskers (lora: 30 % of 1000 tokens/s either side).
        var speed = Svg(html, HtmlReport.SpeedChartId);
        var dashed = speed.Descendants(s + "path").Where(p => (string?)p.Attribute("class") == "whisker").ToList();
        Assert.Equal(4, dashed.Count);   // qdora failed
        Assert.All(dashed, p => Assert.Equal("3 2", (string?)p.Attribute("stroke-dasharray")));
        Assert.Contains(speed.Descendants(s + "text"), t => t.Value.EndsWith("whiskers: assumed one-run noise"));
    }

    [Fact]
    public void Several_seeds_show_mean_and_spread_bands_whiskers_and_every_run()
    {
        MethodResult Seed(string m, int seed, double loss, double rss, double tps) =>
            ComparisonFixtures.Result(m, loss, rss, tps, 0.5) with { Seeds = [seed] };
        var runs = new List<MethodResult>();
        foreach (var (m, l) in new[] { ("lora", 2.0), ("dora", 1.9) })
            for (int i = 0; i < 3; i++) runs.Add(Seed(m, 42 + i, l + 0.01 * i, 300 + i, 1000 + 10 * i) with
            {
                TrainLoss = Enumerable.Range(1, 20).Select(st => new CurvePoint(st, l + 2.0 / st + 0.05 * i)).ToList(),
            });
        var results = new[] { "lora", "dora" }.Select(m => SeedAggregate.Combine(runs.Where(r => r.Method == m).ToList())).ToList();
        var settings = new ComparisonSettings { ModelDir = "m", DataFile = "d.jsonl", OutputDir = "out", Methods = ["lora", "dora"], Seeds = 3 };
        var report = ComparisonFixtures.Report(results, settings) with { Runs = runs };
        string html = HtmlReport.Render(report);
        XNamespace s = "http://www.w3.org/2000/svg";
        var loss = Svg(html, HtmlReport.LossChartId);
        Assert.Equal(["lora", "dora"], loss.Descendants(s + "polygon").Select(p => (string?)p.Attribute("data-method")));
        Assert.Equal(2, Svg(html, HtmlReport.MemoryChartId).Descendants(s + "path").Count(p => (string?)p.Attribute("class") == "whisker"));
        Assert.Contains("<td class=\"num\">301<br>&#177; 1 MiB</td>", html);
        Assert.Contains("<td class=\"num\">2.0100<br>&#177; 0.0100</td>", html);    // eval loss mean ± sample std
        Assert.Contains("3 seeds (42, 43, 44) per method", html);
        Assert.Contains("<table id=\"runs\">", html);
        Assert.Equal(6, CountOf(html[html.IndexOf("<table id=\"runs\">", StringComparison.Ordinal)..], "<tr>") - 1);
        string md = MarkdownReport.Render(report);
        Assert.Contains("- **seeds**: 42, 43, 44 (3 runs per method)", md);
        Assert.Contains("### Every run", md);
        using var doc = JsonDocument.Parse(JsonReport.Render(report));
        Assert.Equal(6, doc.RootElement.GetProperty("runs").GetArrayLength());
        var lora = doc.RootElement.GetProperty("results")[0];
        Assert.Equal(0.01, lora.GetProperty("spread").GetProperty("eval_loss").GetDouble(), 12);
        Assert.Equal(3, lora.GetProperty("seeds").GetArrayLength());
        Assert.Equal("an untitled article comparing LoRA, QLoRA, DoRA and QDoRA for fine-tuning small language models",
            doc.RootElement.GetProperty("claims")[3].GetProperty("source").GetString());
        Assert.Equal("004_056ac6d9ee0dd6ea.txt", doc.RootElement.GetProperty("claims")[3].GetProperty("source_file").GetString());
        Assert.Equal(3, doc.RootElement.GetProperty("claims")[3].GetProperty("parts").GetArrayLength());
    }

    static int CountOf(string s, string sub) => (s.Length - s.Replace(sub, "").Length) / sub.Length;

    static XElement Svg(string html, string id)
    {
        int start = html.IndexOf($"<svg id=\"{id}\"", StringComparison.Ordinal);
        Assert.True(start >= 0, $"chart {id} missing");
        int end = html.IndexOf("</svg>", start, StringComparison.Ordinal) + "</svg>".Length;
        return XElement.Parse(html[start..end]);
    }
}
