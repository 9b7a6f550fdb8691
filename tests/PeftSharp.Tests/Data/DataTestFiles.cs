namespace PeftSharp.Tests.Data;

/// <summary>A temporary folder for data files, deleted with the test.</summary>
internal sealed class DataTestFiles : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "peftsharp-data-" + Guid.NewGuid().ToString("N"));

    public DataTestFiles() => Directory.CreateDirectory(Dir);

    public string Write(string name, string content)
    {
        string p = Path.Combine(Dir, name);
        File.WriteAllText(p, content);
        return p;
    }

    public string WriteLines(string name, params string[] lines) => Write(name, string.Join("\n", lines) + "\n");

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
