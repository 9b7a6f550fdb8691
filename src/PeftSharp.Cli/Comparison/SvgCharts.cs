using System.Globalization;
using System.Net;
using System.Text;

namespace PeftSharp.Cli.Comparison;

/// <summary>Inline SVG charts (no scripts, no external assets): a line chart (linear or logarithmic value axis, optional
/// bands) with axes, ticks, axis labels, title and legend, and a labelled horizontal bar chart with optional ± whiskers.
/// All text is XML-escaped.</summary>
internal static class SvgCharts
{
    /// <param name="Dash">SVG stroke-dasharray ("" = solid), so curves that lie on top of each other stay distinguishable.</param>
    /// <param name="Band">Optional lowest/highest values per step, drawn as a shaded band behind the line (seeds).</param>
    /// <param name="Markers">Draw a dot at every point (curves with few points, such as eval loss).</param>
    public sealed record Series(string Name, string Color, IReadOnlyList<CurvePoint> Points, string Dash = "",
        IReadOnlyList<BandPoint>? Band = null, bool Markers = false);
    /// <param name="Spread">Optional ± whisker around the value (standard deviation over seeds).</param>
    /// <param name="Assumed">The whisker is an assumed noise, not a measured spread (drawn dashed and grey).</param>
    public sealed record Bar(string Label, string Color, double? Value, string ValueText, double? Spread = null, bool Assumed = false);

    static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
    static readonly Dictionary<string, int> KnownMethods = new() { ["full"] = 0, ["lora"] = 1, ["dora"] = 2, ["qlora"] = 3, ["qdora"] = 4 };

    /// <summary>Quantized variants are dashed (their curves often lie on top of the unquantized ones).</summary>
    public static string DashFor(string method) => method switch { "qlora" => "7 4", "qdora" => "2 3", _ => "" };

    /// <summary>A stable colour per method (known methods fixed, others by position).</summary>
    public static string ColorFor(string method, int index) =>
        Palette[KnownMethods.TryGetValue(method, out var k) ? k : (5 + index) % Palette.Length];

    static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
    public static string Esc(string s) => WebUtility.HtmlEncode(s);

    /// <param name="logY">Logarithmic value axis (losses fall over orders of magnitude); values ≤ 0 are left out.</param>
    public static string LineChart(string id, string title, string xLabel, string yLabel, IReadOnlyList<Series> series,
        int width = 760, int height = 420, bool logY = false)
    {
        const int left = 70, right = 150, top = 40, bottom = 56;
        double pw = width - left - right, ph = height - top - bottom;
        bool Plottable(double v) => double.IsFinite(v) && (!logY || v > 0);
        var pts = series.SelectMany(s => s.Points.Concat((s.Band ?? []).SelectMany(b => new[] { new CurvePoint(b.Step, b.Low), new CurvePoint(b.Step, b.High) })))
            .Where(p => Plottable(p.Value)).ToList();
        var sb = new StringBuilder();
        sb.Append($"<svg id=\"{Esc(id)}\" class=\"chart line-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" " +
                  $"viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{Esc(title)}\">");
        sb.Append($"<title>{Esc(title)}</title>");
        sb.Append($"<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#fff\"/>");
        sb.Append($"<text class=\"chart-title\" x=\"{F(left + pw / 2)}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">{Esc(title)}</text>");
        double xmin = pts.Count > 0 ? pts.Min(p => p.Step) : 0, xmax = pts.Count > 0 ? pts.Max(p => p.Step) : 1;
        double ymin = pts.Count > 0 ? pts.Min(p => p.Value) : 0, ymax = pts.Count > 0 ? pts.Max(p => p.Value) : 1;
        var xt = Ticks(xmin, xmax, 6, integer: true);
        var yt = logY && pts.Count > 0 ? LogTicks(ymin, ymax) : Ticks(ymin, ymax, 6, integer: false);
        xmin = xt[0]; xmax = xt[^1]; ymin = yt[0]; ymax = yt[^1];
        Func<double, double> T = logY ? Math.Log10 : v => v;
        double tmin = T(ymin), tmax = T(ymax);
        double X(double v) => left + (xmax > xmin ? (v - xmin) / (xmax - xmin) : 0.5) * pw;
        double Y(double v) => top + ph - (tmax > tmin ? (T(v) - tmin) / (tmax - tmin) : 0.5) * ph;

        // Grid, ticks and tick labels.
        sb.Append("<g class=\"axis x-axis\" font-size=\"12\" fill=\"#333\">");
        foreach (var t in xt)
            sb.Append($"<line x1=\"{F(X(t))}\" y1=\"{top}\" x2=\"{F(X(t))}\" y2=\"{F(top + ph)}\" stroke=\"#eee\"/>" +
                      $"<line x1=\"{F(X(t))}\" y1=\"{F(top + ph)}\" x2=\"{F(X(t))}\" y2=\"{F(top + ph + 5)}\" stroke=\"#333\"/>" +
                      $"<text x=\"{F(X(t))}\" y=\"{F(top + ph + 19)}\" text-anchor=\"middle\">{Esc(TickText(t))}</text>");
        sb.Append($"<text class=\"axis-label\" x=\"{F(left + pw / 2)}\" y=\"{height - 10}\" text-anchor=\"middle\" font-size=\"13\">{Esc(xLabel)}</text></g>");
        sb.Append("<g class=\"axis y-axis\" font-size=\"12\" fill=\"#333\">");
        foreach (var t in yt)
            sb.Append($"<line x1=\"{left}\" y1=\"{F(Y(t))}\" x2=\"{F(left + pw)}\" y2=\"{F(Y(t))}\" stroke=\"#eee\"/>" +
                      $"<line x1=\"{left - 5}\" y1=\"{F(Y(t))}\" x2=\"{left}\" y2=\"{F(Y(t))}\" stroke=\"#333\"/>" +
                      $"<text x=\"{left - 8}\" y=\"{F(Y(t) + 4)}\" text-anchor=\"end\">{Esc(TickText(t))}</text>");
        sb.Append($"<text class=\"axis-label\" transform=\"translate(16 {F(top + ph / 2)}) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">{Esc(yLabel)}</text></g>");
        sb.Append($"<line x1=\"{left}\" y1=\"{F(top + ph)}\" x2=\"{F(left + pw)}\" y2=\"{F(top + ph)}\" stroke=\"#333\"/>");
        sb.Append($"<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{F(top + ph)}\" stroke=\"#333\"/>");

        // Bands first (behind every line), then one polyline per series (a single point is drawn as a dot).
        foreach (var s in series)
        {
            var b = (s.Band ?? []).Where(q => Plottable(q.Low) && Plottable(q.High)).ToList();
            if (b.Count > 1)
                sb.Append($"<polygon class=\"band\" data-method=\"{Esc(s.Name)}\" fill=\"{Esc(s.Color)}\" fill-opacity=\"0.18\" stroke=\"none\" points=\"" +
                          string.Join(" ", b.Select(q => F(X(q.Step)) + "," + F(Y(q.High))).Concat(b.AsEnumerable().Reverse().Select(q => F(X(q.Step)) + "," + F(Y(q.Low))))) + "\"/>");
        }
        foreach (var s in series)
        {
            var p = s.Points.Where(q => Plottable(q.Value)).ToList();
            sb.Append($"<g class=\"series\" data-method=\"{Esc(s.Name)}\">");
            if (p.Count > 1)
                sb.Append($"<polyline fill=\"none\" stroke=\"{Esc(s.Color)}\" stroke-width=\"2\"{DashAttr(s.Dash)} points=\"{string.Join(" ", p.Select(q => F(X(q.Step)) + "," + F(Y(q.Value))))}\"/>");
            if (p.Count == 1 || s.Markers)
                foreach (var q in p) sb.Append($"<circle cx=\"{F(X(q.Step))}\" cy=\"{F(Y(q.Value))}\" r=\"3\" fill=\"{Esc(s.Color)}\"/>");
            sb.Append("</g>");
        }
        if (pts.Count == 0)
            sb.Append($"<text x=\"{F(left + pw / 2)}\" y=\"{F(top + ph / 2)}\" text-anchor=\"middle\" fill=\"#999\">no data</text>");

        // Legend.
        sb.Append($"<g class=\"legend\" font-size=\"13\">");
        for (int i = 0; i < series.Count; i++)
        {
            double ly = top + 10 + i * 22, lx = width - right + 16;
            sb.Append($"<line x1=\"{F(lx)}\" y1=\"{F(ly)}\" x2=\"{F(lx + 24)}\" y2=\"{F(ly)}\" stroke=\"{Esc(series[i].Color)}\" stroke-width=\"3\"{DashAttr(series[i].Dash)}/>" +
                      $"<text class=\"legend-label\" x=\"{F(lx + 30)}\" y=\"{F(ly + 4)}\">{Esc(series[i].Name)}</text>");
        }
        sb.Append("</g></svg>");
        return sb.ToString();
    }

    public static string BarChart(string id, string title, string valueLabel, IReadOnlyList<Bar> bars, int width = 760)
    {
        const int left = 90, top = 40, barH = 24, gap = 10, bottom = 46;
        // Room right of the longest bar for its value text (about 7 px per character at 12 px).
        int right = Math.Max(110, 7 * bars.Select(b => b.ValueText.Length).DefaultIfEmpty(0).Max() + 40);
        int height = top + bars.Count * (barH + gap) + bottom;
        double pw = width - left - right;
        double max = bars.Where(b => b.Value is double v && double.IsFinite(v)).Select(b => b.Value!.Value + (b.Spread ?? 0)).DefaultIfEmpty(1).Max();
        var ticks = Ticks(0, max <= 0 ? 1 : max, 5, integer: false);
        double top0 = ticks[^1];
        var sb = new StringBuilder();
        sb.Append($"<svg id=\"{Esc(id)}\" class=\"chart bar-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" " +
                  $"viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{Esc(title)}\">");
        sb.Append($"<title>{Esc(title)}</title>");
        sb.Append($"<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#fff\"/>");
        sb.Append($"<text class=\"chart-title\" x=\"{F(left + pw / 2)}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">{Esc(title)}</text>");
        double plotBottom = top + bars.Count * (barH + gap);
        sb.Append("<g class=\"axis x-axis\" font-size=\"12\" fill=\"#333\">");
        foreach (var t in ticks)
        {
            double x = left + t / top0 * pw;
            sb.Append($"<line x1=\"{F(x)}\" y1=\"{top - 4}\" x2=\"{F(x)}\" y2=\"{F(plotBottom)}\" stroke=\"#eee\"/>" +
                      $"<text x=\"{F(x)}\" y=\"{F(plotBottom + 16)}\" text-anchor=\"middle\">{Esc(TickText(t))}</text>");
        }
        sb.Append($"<text class=\"axis-label\" x=\"{F(left + pw / 2)}\" y=\"{F(plotBottom + 36)}\" text-anchor=\"middle\" font-size=\"13\">{Esc(valueLabel)}</text></g>");
        for (int i = 0; i < bars.Count; i++)
        {
            var b = bars[i];
            double y = top + i * (barH + gap);
            double w = b.Value is double v && double.IsFinite(v) && top0 > 0 ? Math.Max(0, v / top0 * pw) : 0;
            sb.Append($"<g class=\"bar\" data-method=\"{Esc(b.Label)}\">" +
                      $"<text class=\"bar-label\" x=\"{left - 8}\" y=\"{F(y + barH / 2.0 + 5)}\" text-anchor=\"end\" font-size=\"13\">{Esc(b.Label)}</text>" +
                      $"<rect x=\"{left}\" y=\"{F(y)}\" width=\"{F(w)}\" height=\"{barH}\" fill=\"{Esc(b.Color)}\"/>");
            double textX = left + w + 6;
            if (b.Spread is double sd && sd > 0 && w > 0 && b.Value is double bv)
            {
                // ± one standard deviation as a whisker across the bar's end.
                double x0 = left + Math.Max(0, bv - sd) / top0 * pw, x1 = left + (bv + sd) / top0 * pw, ym = y + barH / 2.0;
                sb.Append($"<path class=\"whisker\" d=\"M{F(x0)} {F(ym)}H{F(x1)}M{F(x0)} {F(ym - 6)}V{F(ym + 6)}M{F(x1)} {F(ym - 6)}V{F(ym + 6)}\" stroke=\"{(b.Assumed ? "#777" : "#222")}\" stroke-width=\"1.5\" fill=\"none\"{(b.Assumed ? " stroke-dasharray=\"3 2\"" : "")}/>");
                textX = Math.Max(textX, x1 + 6);
            }
            sb.Append($"<text class=\"bar-value\" x=\"{F(textX)}\" y=\"{F(y + barH / 2.0 + 5)}\" font-size=\"12\">{Esc(b.ValueText)}</text></g>");
        }
        sb.Append($"<line x1=\"{left}\" y1=\"{top - 4}\" x2=\"{left}\" y2=\"{F(plotBottom)}\" stroke=\"#333\"/>");
        sb.Append("</svg>");
        return sb.ToString();
    }

    /// <summary>"Nice" tick values (1, 2 or 5 × 10^k apart) covering [lo, hi].</summary>
    public static double[] Ticks(double lo, double hi, int target, bool integer)
    {
        if (!(hi > lo)) { hi = lo + (integer ? 1 : Math.Max(Math.Abs(lo) * 0.1, 1e-6)); lo -= integer ? 0 : (hi - lo); }
        double raw = (hi - lo) / Math.Max(1, target - 1);
        double mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1.0, 2, 5, 10 }.Select(m => m * mag).First(s => s >= raw);
        if (integer) step = Math.Max(1, Math.Round(step));
        double start = Math.Floor(lo / step) * step, end = Math.Ceiling(hi / step) * step;
        var list = new List<double>();
        for (double t = start; t <= end + step * 1e-9; t += step) list.Add(Math.Round(t / step) * step);
        return list.ToArray();
    }

    /// <summary>Ticks for a logarithmic axis covering [lo, hi] (lo > 0): 1-2-5 × 10^k, finer mantissas while that
    /// gives fewer than four ticks, and evenly spaced ticks when the range is too narrow for any of them.</summary>
    public static double[] LogTicks(double lo, double hi)
    {
        if (!(lo > 0) || !(hi >= lo)) return Ticks(Math.Max(lo, 0), Math.Max(hi, 1), 6, integer: false);
        double[][] mantissas = [[1, 2, 5], [1, 2, 3, 5], [1, 1.5, 2, 3, 4, 5, 6, 8]];
        int k0 = (int)Math.Floor(Math.Log10(lo)) - 1, k1 = (int)Math.Ceiling(Math.Log10(hi)) + 1;
        double[] best = [];
        foreach (var set in mantissas)
        {
            var c = Enumerable.Range(k0, k1 - k0 + 1).SelectMany(k => set.Select(m => Math.Round(m * Math.Pow(10, k), 12))).Order().ToList();
            double min = c.Last(v => v <= lo * (1 + 1e-12)), max = c.First(v => v >= hi * (1 - 1e-12));
            best = c.Where(v => v >= min && v <= max).ToArray();
            if (best.Length >= 4) return best;
        }
        if (best.Length >= 3) return best;
        var linear = Ticks(lo, hi, 6, integer: false).Where(t => t > 0).ToArray();
        return linear.Length >= 2 ? linear : [lo, hi];
    }

    static string DashAttr(string dash) => dash.Length > 0 ? $" stroke-dasharray=\"{Esc(dash)}\"" : "";

    static string TickText(double v) => v != 0 && Math.Abs(v) < 0.001 ? v.ToString("0.#e+0", CultureInfo.InvariantCulture) : Math.Abs(v) >= 1e7 ? v.ToString("0.#e+0", CultureInfo.InvariantCulture) : v.ToString("#,0.###", CultureInfo.InvariantCulture);
}
