using System.CommandLine;
using PeftSharp.Hub;

namespace PeftSharp.Cli;

/// <summary>
/// Turns a command's model argument into a folder: an existing path is used as it is; otherwise a Hugging Face id
/// (<c>org/name</c>, <c>org/name@revision</c>) is looked up in the local Hugging Face cache, where transformers,
/// huggingface-cli and `peft download` put models. The name <c>default-model</c> (when no such folder is here) is
/// the embedded default model that ships with the tool.
/// </summary>
internal static class ModelLocator
{
    public static string Resolve(string arg, HubEnvironment? env = null)
    {
        if (Directory.Exists(arg) || File.Exists(arg)) return arg;
        if (arg == Training.DefaultAssets.ModelFolder) return Training.DefaultAssets.Model;
        var id = HubModelId.TryParse(arg);
        if (id == null) return arg;   // not an id: the loader reports the missing path
        env ??= HubEnvironment.From();
        var cache = new HubCache(env.CacheDir);
        return cache.TryResolve(id) ?? throw new PeftException(
            $"'{arg}' is neither a folder nor a model in the Hugging Face cache ({cache.RepoDir(id)}); " +
            $"download it with `peft download {arg}`");
    }

    /// <summary>A command's model argument, described with both forms it accepts.</summary>
    public static Argument<string> Argument(string description = "model folder") =>
        new("model") { Description = description + ", or a Hugging Face id (org/name[@revision]) in the local HF cache" };

    /// <summary>The resolved value of a model argument.</summary>
    public static string Value(ParseResult pr, Argument<string> arg) => Resolve(pr.GetValue(arg)!);

    public static string? Value(ParseResult pr, Option<string?> opt) => pr.GetValue(opt) is { } v ? Resolve(v) : null;
}
