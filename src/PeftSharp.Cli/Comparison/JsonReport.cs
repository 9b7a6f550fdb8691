using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftSharp.Cli.Comparison;

/// <summary>report.json: settings, per-method measurements and curves (the mean over the seeds, with "spread" their sample
/// standard deviations), every single run under "runs", claims with their parts (snake_case keys; memory in MiB or
/// bytes; missing values are null).</summary>
internal static class JsonReport
{
    public static string Render(ComparisonReport report)
    {
        var s = report.Settings;
        var root = new JsonObject
        {
            ["created_utc"] = report.CreatedUtc.ToString("O"),
            ["machine"] = report.Machine,
            ["settings"] = new JsonObject
            {
                ["model"] = s.ModelDir, ["data"] = s.DataFile, ["eval_data"] = s.EvalFile, ["config"] = s.ConfigFile,
                ["methods"] = new JsonArray(s.Methods.Select(m => (JsonNode)JsonValue.Create(m)!).ToArray()),
                ["max_steps"] = s.MaxSteps, ["seed"] = s.Seed, ["seeds"] = s.Seeds, ["learning_rate"] = s.LearningRate, ["lr_scheduler_type"] = s.LrScheduler,
                ["r"] = s.R, ["lora_alpha"] = s.LoraAlpha, ["task_eval"] = s.TaskEval, ["threads"] = s.Threads,
                ["learning_rate_overrides"] = new JsonObject(s.LearningRateOverrides.Where(kv => s.Methods.Contains(kv.Key))
                    .Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            },
            ["deliberate_differences"] = new JsonArray(report.DeliberateDifferences().Select(d => (JsonNode)JsonValue.Create(d)!).ToArray()),
            ["noise"] = s.Seeds == 1
                ? new JsonObject
                {
                    ["kind"] = "assumed one-run standard deviation", ["text"] = SeedsNote.Text(report),
                    ["eval_loss_relative"] = RunNoise.EvalLossRelative, ["exact_match_absolute"] = RunNoise.ExactMatchAbsolute,
                    ["tokens_per_second_relative"] = RunNoise.TokensPerSecondRelative, ["peak_rss_relative"] = RunNoise.PeakRssRelative,
                }
                : new JsonObject { ["kind"] = "sample standard deviation over the seeds (each result's \"spread\")", ["text"] = SeedsNote.Text(report) },
            ["results"] = new JsonArray(report.Results.Select(Result).ToArray()),
            ["runs"] = new JsonArray(report.Runs.Select(Result).ToArray()),
            ["claims"] = new JsonArray(report.Claims.Select(c => (JsonNode)new JsonObject
            {
                ["title"] = c.Title, ["source"] = c.Source.Citation, ["source_file"] = c.Source.File, ["quote"] = c.Quote,
                ["definition"] = c.Definition, ["ours"] = c.Ours, ["verdict"] = c.VerdictText,
                ["parts"] = new JsonArray(c.Parts.Select(p => (JsonNode)new JsonObject
                {
                    ["name"] = p.Name, ["verdict"] = ClaimCheck.Text(p.Verdict), ["finding"] = p.Finding,
                }).ToArray()),
            }).ToArray()),
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    static JsonNode Result(MethodResult r) => new JsonObject
    {
        ["method"] = r.Method,
        ["status"] = r.Status.ToString().ToLowerInvariant(),
        ["error"] = r.Error,
        ["log_file"] = r.LogFile,
        ["learning_rate"] = r.LearningRate,
        ["steps"] = r.Steps,
        ["trainable_parameters"] = r.TrainableParameters,
        ["total_parameters"] = r.TotalParameters,
        ["trainable_percent"] = r.TrainablePercent,
        ["frozen_weight_bytes"] = r.FrozenWeightBytes,
        ["trainable_bytes"] = r.TrainableBytes,
        ["optimizer_bytes"] = r.OptimizerBytes,
        ["peak_rss_mib"] = r.PeakRssMib,
        ["tokens_per_second"] = r.TokensPerSecond,
        ["wall_seconds"] = r.WallSeconds,
        ["final_train_loss"] = r.FinalTrainLoss,
        ["eval_loss_before"] = r.EvalLossBefore,
        ["eval_loss"] = r.EvalLoss,
        ["eval_perplexity"] = r.EvalPerplexity,
        ["exact_match_before"] = r.ExactMatchBefore,
        ["exact_match"] = r.ExactMatch,
        ["saved_dir"] = r.SavedDir,
        ["saved_bytes"] = r.SavedBytes,
        ["train_loss"] = new JsonArray(r.TrainLoss.Select(p => (JsonNode)new JsonArray(p.Step, p.Value)).ToArray()),
        ["eval_loss_curve"] = new JsonArray(r.EvalLossCurve.Select(p => (JsonNode)new JsonArray(p.Step, p.Value)).ToArray()),
        ["seeds"] = new JsonArray(r.Seeds.Select(x => (JsonNode)JsonValue.Create(x)).ToArray()),
        ["spread"] = r.Spread is { } d ? new JsonObject
        {
            ["peak_rss_mib"] = d.PeakRssMib, ["tokens_per_second"] = d.TokensPerSecond, ["wall_seconds"] = d.WallSeconds,
            ["final_train_loss"] = d.FinalTrainLoss, ["eval_loss"] = d.EvalLoss, ["eval_perplexity"] = d.EvalPerplexity,
            ["exact_match"] = d.ExactMatch,
        } : null,
    };
}
