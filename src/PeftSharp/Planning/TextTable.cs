using System.Text;

namespace PeftSharp.Planning;

/// <summary>A plain-text table: columns padded to their widest cell, first column left-aligned, the rest right-aligned.</summary>
internal sealed class TextTable
{
    readonly string[] _header;
    readonly List<string[]> _rows = [];
    readonly string _sep;

    public TextTable(string separator, params string[] header) { _sep = separator; _header = header; }

    public TextTable Add(params object[] cells)
    {
        if (cells.Length != _header.Length) throw new ArgumentException($"row has {cells.Length} cells, header {_header.Length}");
        _rows.Add(cells.Select(c => c?.ToString() ?? "").ToArray());
        return this;
    }

    public override string ToString()
    {
        var all = _rows.Prepend(_header).ToList();
        var widths = Enumerable.Range(0, _header.Length).Select(i => all.Max(r => r[i].Length)).ToArray();
        var sb = new StringBuilder();
        foreach (var r in all)
        {
            var cells = r.Select((cell, i) => i == 0 ? cell.PadRight(widths[i]) : cell.PadLeft(widths[i]));
            sb.AppendLine(string.Join(_sep, cells).TrimEnd());
        }
        return sb.ToString().TrimEnd('\n');
    }
}
