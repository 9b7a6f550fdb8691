using System.CommandLine;
using System.Text.Json.Nodes;
using PeftSharp.Data;
using PeftSharp.Evaluation;
using PeftSharp.Templates;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft eval &lt;model-dir&gt; --data f.jsonl [--adapter dir]`: loss, perplexity and exact match, as JSON.</summary>
internal sealed class EvalCommand : ICliCommand
{
    public Command Build()
    {
        var dir = ModelLocator.Argument();
        var data = new Option<string>("--data") { Description = "evaluation data (.jsonl/.json; any supported format)", Required = true };
        var adapters = new Option<string[]>("--adapter") { Description = "PEFT adapter folder(s); with several, each is evaluated in turn" };
        var maxLength = new Option<int>("--max-length") { DefaultValueFactory = _ => 512 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 4 };
        var exact = new Option<int>("--exact-match") { Description = "examples for the greedy exact-match metric (0 = off)", DefaultValueFactory = _ => 64 };
        var format = new Option<string>("--data-format") { DefaultValueFactory = _ => "auto" };
        var threads = SharedOptions.Threads();
        var cmd = new Command("eval", "evaluate a model (and adapters) on a data set: loss, perplexity, exact match");
        cmd.Arguments.Add(dir);
        foreach (var o in new Option[] { data, adapters, maxLength, batch, exact, format, threads }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            string modelDir = ModelLocator.Value(pr, dir);
            var paths = pr.GetValue(adapters) ?? [];
            using var pm = ModelLoading.Load(compute, modelDir, paths);
            var tokenizer = ModelLoading.Tokenizer(modelDir);
            var prepared = TrainingData.Prepare(pr.GetValue(data)!, tokenizer, ChatTemplateSource.TryLoad(modelDir),
                new DataOptions { Format = DatasetFormats.Parse(pr.GetValue(format)!) });
            var examples = prepared.Train;
            var batching = new BatchOptions { BatchSize = pr.GetValue(batch), MaxLength = pr.GetValue(maxLength), PadId = tokenizer.EosId ?? 0, PadToMaxLength = false };
            // The base alone, then each adapter (loaded as default / adapter0, adapter1 …).
            var names = new List<(string Label, string? Adapter)> { ("base", null) };
            names.AddRange(paths.Select((p, i) => (p, (string?)(paths.Length == 1 ? "default" : $"adapter{i}"))));
            foreach (var (label, adapter) in names)
            {
                pm.SetActive(adapter);
                var loss = LossEvaluator.Evaluate(pm.Model, compute, pm.Route(adapter), examples, batching);
                var em = pr.GetValue(exact) > 0 ? ExactMatch.Evaluate(pm.Model, compute, pm.Route(adapter), tokenizer, examples, pr.GetValue(exact)) : null;
                Console.WriteLine(new JsonObject
                {
                    ["model"] = label, ["examples"] = examples.Count, ["tokens"] = loss.Tokens,
                    ["loss"] = Math.Round(loss.Loss, 6), ["perplexity"] = Math.Round(loss.Perplexity, 4),
                    ["exact_match"] = em is { Examples: > 0 } ? Math.Round(em.Rate, 4) : null,
                    ["exact_match_examples"] = em?.Examples,
                }.ToJsonString());
            }
            return 0;
        }));
        return cmd;
    }
}
