using System.CommandLine;
using System.Reflection;
using PeftSharp.Cli;

var root = new RootCommand("PeftSharp: parameter-efficient fine-tuning (LoRA, DoRA, QLoRA, QDoRA) of Llama-family models in .NET");
foreach (var cmd in Discover<ICliCommand>()) root.Subcommands.Add(cmd.Build());

var bench = new Command("bench", "benchmarks; each prints one JSON object per line");
foreach (var cmd in Discover<IBenchCommand>()) bench.Subcommands.Add(cmd.Build());
root.Subcommands.Add(bench);

return root.Parse(args).Invoke();

static IEnumerable<T> Discover<T>() =>
    typeof(ICliCommand).Assembly.GetTypes()
        .Where(t => typeof(T).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
        .OrderBy(t => t.Name)
        .Select(t => (T)Activator.CreateInstance(t)!);
