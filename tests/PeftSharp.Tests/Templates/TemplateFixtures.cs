namespace PeftSharp.Tests.Templates;

/// <summary>Locates tests/fixtures from the test binary folder (walks up to the repository root).</summary>
internal static class TemplateFixtures
{
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "tests", "fixtures");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException("tests/fixtures not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Templates => Path.Combine(Root, "templates");

    /// <summary>tokenizer_config.json of an npm fixture package (installed by `npm ci` in tests/fixtures/npm).</summary>
    public static string NpmConfig(string package) =>
        Path.Combine(Root, "npm", "node_modules", package, "models", "tokenizer_config.json");
}
