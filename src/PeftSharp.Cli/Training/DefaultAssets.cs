namespace PeftSharp.Cli.Training;

/// <summary>
/// The embedded default: a tiny Llama-architecture model pretrained by this project and a demo fine-tuning task.
/// They are copied beside the executable (and into the tool package), so they are found relative to the tool,
/// never the current folder.
/// </summary>
internal static class DefaultAssets
{
    public const string ModelFolder = "default-model";
    public const string DemoData = "demo/train.jsonl";
    public const string DemoEval = "demo/eval.jsonl";

    public static string Root
    {
        get
        {
            // Beside the executable first; its ancestors cover a build output inside the repository.
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            {
                var candidate = Path.Combine(d.FullName, "assets");
                if (File.Exists(Path.Combine(candidate, ModelFolder, "config.json"))) return candidate;
            }
            throw new PeftException($"the embedded default model (assets/{ModelFolder}) is missing from {AppContext.BaseDirectory}; " +
                                    "reinstall the tool, or pass --model and --data (re-create the model with scripts/make-default-model.sh)");
        }
    }

    public static string Model => Path.Combine(Root, ModelFolder);
    public static string Data => Path.Combine(Root, DemoData);
    public static string Eval => Path.Combine(Root, DemoEval);
}
