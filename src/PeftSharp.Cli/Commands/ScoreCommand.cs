using System.CommandLine;
using System.Text.Json.Nodes;
using PeftSharp.Inference;
using PeftSharp.Models;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft score &lt;model-dir&gt; --ids 1,2,3`: log p(token | previous tokens) for each token, as JSON.</summary>
internal sealed class ScoreCommand : ICliCommand
{
    public Command Build()
    {
        var dir = ModelLocator.Argument();
        var ids = new Option<string?>("--ids") { Description = "comma-separated token ids" };
        var text = new Option<string?>("--text") { Description = "text to score (tokenized with the model's tokenizer, BOS added)" };
        var quantize = ModelLoading.QuantizeOptions();
        var adapters = new Option<string[]>("--adapter") { Description = "PEFT adapter folder(s) (the last one is active)" };
        var threads = SharedOptions.Threads();
        var cmd = new Command("score", "log-probability of each token given the ones before it, as JSON");
        cmd.Arguments.Add(dir);
        cmd.Options.Add(ids);
        cmd.Options.Add(text);
        cmd.Options.Add(adapters);
        cmd.Options.Add(quantize.Type);
        cmd.Options.Add(quantize.DoubleQuant);
        cmd.Options.Add(threads);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            string? t = pr.GetValue(text), idText = pr.GetValue(ids);
            if ((t == null) == (idText == null)) throw new PeftException("give exactly one of --ids or --text");
            using var pm = ModelLoading.Load(compute, ModelLocator.Value(pr, dir), pr.GetValue(adapters), ModelLoading.ParseQuantize(pr, quantize));
            var tokens = t != null ? ModelLoading.Tokenizer(ModelLocator.Value(pr, dir)).Encode(t, addSpecial: true) : TokenIds.Parse(idText!, "--ids");
            var result = Scorer.Score(pm.Model, compute, pm.Route(pm.Active), tokens);
            Console.WriteLine(result.ToJson());
            return 0;
        }));
        return cmd;
    }
}

/// <summary>Parses "1,2,3" into token ids with a clear error.</summary>
internal static class TokenIds
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
