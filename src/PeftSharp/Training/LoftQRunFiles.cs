using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftSharp.IO;
using PeftSharp.Peft;
using PeftSharp.Tensors;

namespace PeftSharp.Training;

/// <summary>
/// What a LoftQ run writes beside its adapter so that it can be reproduced and used elsewhere: loftq-base/ (the model
/// with LoftQ's quantized base: a bitsandbytes 4-bit checkpoint for qlora/qdora, readable by transformers and by this
/// project; for lora/dora the dense dequant(Q) as PEFT's loftq_init leaves it), loftq-init/ (the adapter before the
/// first step, a PEFT adapter whose base_model_name_or_path is loftq-base/) and loftq.json (the relative errors LoftQ
/// measured per module, also written into each LoftQ adapter folder).
/// </summary>
internal static class LoftQRunFiles
{
    public static string BaseDir(string outputDir) => Path.Combine(outputDir, "loftq-base");
    public static string InitialAdapterDir(string outputDir) => Path.Combine(outputDir, "loftq-init");
    public static string ReportPath(string outputDir) => Path.Combine(outputDir, "loftq.json");

    /// <summary>One line for the run's log: the total error with LoftQ against plain NF4.</summary>
    public static string Summary(IReadOnlyList<LoftQModuleReport> reports)
    {
        var (plain, steps) = LoftQModuleReport.Total(reports);
        string F(double v) => v.ToString("0.0000", CultureInfo.InvariantCulture);
        return $"LoftQ over {reports.Count} modules: ‖W − (Q + s·B·A)‖/‖W‖ = {string.Join(" → ", steps.Select(F))} " +
               $"after {steps.Length} step(s); plain NF4 ‖W − Q‖/‖W‖ = {F(plain)}";
    }

    /// <summary>Writes loftq-base/, loftq.json and (on a fresh run, while the adapter still holds its initial values)
    /// loftq-init/.</summary>
    public static void Write(string outputDir, PeftModel pm, string modelDir, IReadOnlyList<LoftQModuleReport> reports,
        bool writeInitialAdapter, ITrainingObserver obs)
    {
        Directory.CreateDirectory(outputDir);
        string baseDir = BaseDir(outputDir);
        var dtype = pm.Model.Config.TorchDtype switch { "bfloat16" => DType.BF16, "float16" => DType.F16, _ => DType.F32 };
        HfCheckpoint.Write(baseDir, pm.Model, modelDir, dtype);
        var config = pm.Configs["default"].LoftqConfig!;
        WriteReport(outputDir, reports, config);
        if (writeInitialAdapter)
        {
            pm.Save(InitialAdapterDir(outputDir), "default", DType.F32, Path.GetFullPath(baseDir));
            WriteReport(InitialAdapterDir(outputDir), reports, config);
        }
        obs.OnMessage($"LoftQ base → {baseDir}{(writeInitialAdapter ? $", initial adapter → {InitialAdapterDir(outputDir)}" : "")}");
    }

    /// <summary>Writes loftq.json into <paramref name="dir"/> (a run folder or an adapter folder: the saved
    /// adapter_config.json says init_lora_weights true, as PEFT loads it, so this file is where its LoftQ origin is kept).</summary>
    public static void WriteReport(string dir, IReadOnlyList<LoftQModuleReport> reports, LoftQConfig config) =>
        AtomicFile.WriteAllText(ReportPath(dir), ReportJson(reports, config).ToJsonString(
            new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));

    /// <summary>{"loftq_config": …, "total": {"plain_nf4", "loftq": [per step]}, "modules": [{"module", "shape", "plain_nf4", "loftq"}]}.</summary>
    public static JsonObject ReportJson(IReadOnlyList<LoftQModuleReport> reports, LoftQConfig config)
    {
        static JsonArray Steps(IEnumerable<double> xs) => new(xs.Select(x => (JsonNode?)JsonValue.Create(Math.Round(x, 6))).ToArray());
        var (plain, steps) = LoftQModuleReport.Total(reports);
        return new JsonObject
        {
            ["loftq_config"] = config.ToJson(),
            ["total"] = new JsonObject { ["plain_nf4"] = Math.Round(plain, 6), ["loftq"] = Steps(steps) },
            ["modules"] = new JsonArray(reports.Select(m => (JsonNode?)new JsonObject
            {
                ["module"] = m.Module,
                ["shape"] = new JsonArray(m.OutFeatures, m.InFeatures),
                ["plain_nf4"] = Math.Round(m.PlainError, 6),
                ["loftq"] = Steps(m.Errors),
            }).ToArray()),
        };
    }
}
