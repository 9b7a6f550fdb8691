namespace PeftSharp.Hub;

/// <summary>
/// Where the Hugging Face cache lives and how to reach the Hub, read from the same environment variables the Python
/// tools use: HF_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub (~/.cache by default);
/// HF_ENDPOINT (default https://huggingface.co), HF_TOKEN, HF_HUB_OFFLINE.
/// </summary>
internal sealed record HubEnvironment(string CacheDir, string Endpoint, string? Token, bool Offline)
{
    public const string PublicEndpoint = "https://huggingface.co";

    /// <summary>Reads the variables through <paramref name="get"/> (the process environment by default).</summary>
    public static HubEnvironment From(Func<string, string?>? get = null)
    {
        get ??= Environment.GetEnvironmentVariable;
        string? Value(string name) => get(name) is { Length: > 0 } v ? v : null;
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string hfHome = Value("HF_HOME") ?? Path.Combine(Value("XDG_CACHE_HOME") ?? Path.Combine(home, ".cache"), "huggingface");
        string cache = Value("HF_HUB_CACHE") ?? Value("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(hfHome, "hub");
        string endpoint = (Value("HF_ENDPOINT") ?? PublicEndpoint).TrimEnd('/');
        string? token = Value("HF_TOKEN") ?? ReadTokenFile(Path.Combine(hfHome, "token"));
        return new HubEnvironment(ExpandHome(cache, home), endpoint, token, IsTrue(Value("HF_HUB_OFFLINE")));
    }

    // huggingface-cli login stores the token here; HF_TOKEN takes precedence.
    static string? ReadTokenFile(string path)
    {
        try { return File.Exists(path) ? File.ReadAllText(path).Trim() is { Length: > 0 } t ? t : null : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    static bool IsTrue(string? v) => v?.Trim().ToLowerInvariant() is "1" or "true" or "yes" or "on";

    static string ExpandHome(string path, string home) => path.StartsWith("~/") ? Path.Combine(home, path[2..]) : path;
}
