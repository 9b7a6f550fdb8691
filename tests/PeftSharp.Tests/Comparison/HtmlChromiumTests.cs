using System.Diagnostics;
using PeftSharp.Cli.Comparison;

namespace PeftSharp.Tests.Comparison;

/// <summary>report.html rendered by headless Chromium (Debian package `chromium`, installed by .ci/run): the page
/// loads, the charts are in the rendered DOM with their titles and legend labels, and a screenshot is produced.</summary>
public class HtmlChromiumTests
{
    const string Chromium = "/usr/bin/chromium";

    static string RunChromium(string profile, params string[] args)
    {
        var psi = new ProcessStartInfo(Chromium)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars", $"--user-data-dir={profile}" }.Concat(args))
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(90_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("chromium did not finish within 90 s");
        }
        Assert.True(p.ExitCode == 0, $"chromium exited with {p.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }

    [Fact]
    public void Report_renders_in_headless_chromium_with_charts_titles_and_legend()
    {
        Assert.True(File.Exists(Chromium),
            $"{Chromium} not found: this test needs the Debian package 'chromium' (apt-get install -y chromium; .ci/run installs it)");
        string dir = ComparisonFixtures.TempDir("cmp-html");
        try
        {
            var report = ComparisonFixtures.TypicalReport();
            var paths = ReportFiles.Write(report, dir);
            string url = new Uri(paths.Html).AbsoluteUri;
            string profile = Path.Combine(dir, "profile");

            string dom = RunChromium(profile, "--dump-dom", url);
            Assert.Contains("<h1>PeftSharp method comparison</h1>", dom);
            foreach (var id in new[] { HtmlReport.LossChartId, HtmlReport.EvalLossChartId, HtmlReport.TaskChartId, HtmlReport.MemoryChartId,
                         HtmlReport.SpeedChartId, HtmlReport.FrozenChartId })
                Assert.Contains($"<svg id=\"{id}\"", dom);
            foreach (var title in new[] { HtmlReport.LossChartTitle, HtmlReport.EvalLossChartTitle, HtmlReport.TaskChartTitle, HtmlReport.MemoryChartTitle,
                         HtmlReport.SpeedChartTitle, HtmlReport.FrozenChartTitle })
                Assert.Contains($"<title>{title}</title>", dom);
            int legend = dom.IndexOf("class=\"legend\"", StringComparison.Ordinal);
            Assert.True(legend >= 0, "loss chart legend missing from the rendered DOM");
            string legendDom = dom[legend..dom.IndexOf("</g>", legend, StringComparison.Ordinal)];
            foreach (var method in new[] { "full", "lora", "dora", "qlora", "qdora (failed)" })
                Assert.Contains($">{method}</text>", legendDom);
            Assert.Contains(">optimizer step</text>", dom);
            Assert.Contains(">train loss (log scale)</text>", dom);
            Assert.Contains("<polyline", dom);
            Assert.Contains("agrees</span>", dom);

            string png = Path.Combine(dir, "report.png");
            RunChromium(profile, $"--screenshot={png}", "--window-size=1200,2400", url);
            Assert.True(File.Exists(png), "chromium wrote no screenshot");
            var bytes = File.ReadAllBytes(png);
            Assert.True(bytes.Length > 10_000, $"screenshot is only {bytes.Length} bytes");
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        }
        finally { Directory.Delete(dir, true); }
    }
}
