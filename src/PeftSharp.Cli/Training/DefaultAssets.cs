namespace PeftSharp.Cli.Training;

/// <summary>
/// The embedded default: a tiny Llama-architecture model pretrained by this project and a demo fine-tuning task,
/// shipped under assets/ (copied beside the executable, found from the repository when run with dotnet run).
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
            foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            {
                for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
                {
                    var candidate = Path.Combine(d.FullName, "assets");
                    if (File.Exists(Path.Combine(candidate, ModelFolder, "config.json"))) return candidate;
                }
            }
            throw new PeftException("the embedded default model (assets/default-model) was not found beside the executable or in the repository; " +
                                    "pass --model and --data, or re-create it with `peft pretrain-default`");
        }
    }

    public static string Model => Path.Combine(Root, ModelFolder);
    public static string Data => Path.Combine(Root, DemoData);
    public static string Eval => Path.Combine(Root, DemoEval);
}
