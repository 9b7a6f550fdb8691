using System.CommandLine;
using System.Globalization;
using PeftSharp.Tensors;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft combine &lt;model-dir&gt; --adapter a --adapter b --weights 0.7,0.3 --out dir`: PEFT's add_weighted_adapter
/// ("cat": exact weighted sum of the adapters' updates, rank = sum of ranks; "linear": same-rank adapters).
/// </summary>
internal sealed class CombineCommand : ICliCommand
{
    public Command Build()
    {
        var dir = ModelLocator.Argument("the base model the adapters were trained on");
        var adapters = new Option<string[]>("--adapter") { Description = "adapter folders to combine (two or more)", Required = true };
        var weights = new Option<string>("--weights") { Description = "comma-separated weights, one per adapter (default: all 1)" };
        var combination = new Option<string>("--combination") { Description = "cat (exact, ranks add up) or linear (same rank)", DefaultValueFactory = _ => "cat" };
        var output = new Option<string>("--out") { Description = "folder for the combined PEFT adapter", Required = true };
        var cmd = new Command("combine", "combine several LoRA adapters into one (PEFT's add_weighted_adapter)");
        cmd.Arguments.Add(dir);
        foreach (var o in new Option[] { adapters, weights, combination, output }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            var paths = pr.GetValue(adapters)!;
            if (paths.Length < 2) throw new PeftException("--adapter: give at least two adapters to combine");
            var w = pr.GetValue(weights) is { } text
                ? text.Split(',', StringSplitOptions.TrimEntries).Select((s, i) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d
                    : throw new PeftException($"--weights: item {i + 1} '{s}' is not a number")).ToArray()
                : Enumerable.Repeat(1.0, paths.Length).ToArray();
            if (w.Length != paths.Length) throw new PeftException($"--weights: {w.Length} weights for {paths.Length} adapters");
            using var compute = SharedOptions.Compute(Environment.ProcessorCount);
            using var pm = ModelLoading.Load(compute, ModelLocator.Value(pr, dir), paths);
            var names = paths.Select((_, i) => $"adapter{i}").ToList();
            pm.Combine(names, w, "combined", pr.GetValue(combination)!);
            pm.Save(pr.GetValue(output)!, "combined", DType.F32, Path.GetFullPath(ModelLocator.Value(pr, dir)));
            Console.WriteLine($"combined {paths.Length} adapters ({pr.GetValue(combination)}, rank {pm.Configs["combined"].R}) → {pr.GetValue(output)}");
            return 0;
        }));
        return cmd;
    }
}
