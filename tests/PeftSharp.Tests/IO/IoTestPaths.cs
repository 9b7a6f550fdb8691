namespace PeftSharp.Tests.IO;

/// <summary>Repository paths for fixtures, and a per-test scratch folder.</summary>
internal static class IoTestPaths
{
    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "PeftSharp.slnx"))) return d.FullName;
            throw new InvalidOperationException("repository root (PeftSharp.slnx) not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Fixture(params string[] parts) => Path.Combine([RepoRoot, "tests", "fixtures", .. parts]);
    public static string ModelConfig(string file) => Path.Combine(RepoRoot, "assets", "model-configs", file);
}

/// <summary>A fresh temp folder deleted at the end of the test.</summary>
internal sealed class ScratchDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("peftsharp-io-").FullName;
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
