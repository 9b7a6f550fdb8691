using System.Text.Json;
using PeftSharp.IO;

namespace PeftSharp.Training;

/// <summary>
/// summary.json, the result of a finished run (<see cref="TrainingResult"/>): written with snake_case keys
/// (final_loss, final_eval.perplexity, memory.peak_rss_mb …); read in that spelling or the PascalCase one that
/// earlier versions wrote, so finished runs stay usable.
/// </summary>
internal static class TrainingSummary
{
    public const string FileName = "summary.json";

    public static void Write(string outputDir, TrainingResult result) =>
        AtomicFile.WriteAllText(Path.Combine(outputDir, FileName), SnakeCaseJson.Serialize(result));

    public static TrainingResult Read(string path)
    {
        if (!File.Exists(path)) throw new PeftException($"{path}: not found");
        try { return SnakeCaseJson.Deserialize<TrainingResult>(File.ReadAllText(path)) ?? throw new PeftException($"{path}: empty"); }
        catch (JsonException e) { throw new PeftException($"{path}: not a training summary ({e.Message})"); }
    }
}
