using System.CommandLine;
using System.Text.Json.Nodes;
using PeftSharp.Inference;
using PeftSharp.Models;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft score &lt;model-dir&gt; --ids 1,2,3`: log p(token | previous tokens) for each token, as JSON.</summary>
public sealed class ScoreCommand : ICliCommand
{
    public Command Build()
    {
        var dir = new Argument<string>("model-dir") { Description = "Hugging Face model folder" };
        var ids = new Option<string>("--ids") { Description = "comma-separated token ids", Required = true };
        var threads = SharedOptions.Threads();
        var cmd = new Command("score", "log-probability of each token given the ones before it, as JSON");
        cmd.Arguments.Add(dir);
        cmd.Options.Add(ids);
        cmd.Options.Add(threads);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            SharedOptions.ApplyThreads(pr.GetValue(threads));
            var tokens = TokenIds.Parse(pr.GetValue(ids)!, "--ids");
            using var model = CausalLM.Load(pr.GetValue(dir)!);
            var result = Scorer.Score(model, tokens);
            Console.WriteLine(result.ToJson());
            return 0;
        }));
        return cmd;
    }
}

/// <summary>Parses "1,2,3" into token ids with a clear error.</summary>
public static class TokenIds
{
    public static int[] Parse(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new PeftException($"{option}: expected comma-separated token ids, got '{text}'");
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out ids[i]) || ids[i] < 0)
                throw new PeftException($"{option}: item {i + 1} '{parts[i]}' is not a non-negative integer token id");
        return ids;
    }
}
