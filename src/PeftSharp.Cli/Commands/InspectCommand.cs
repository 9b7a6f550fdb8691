using System.CommandLine;
using PeftSharp.Models;
using PeftSharp.Inspection;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft inspect &lt;model-dir&gt;`: architecture, parameter counts by module kind, dtypes, bytes.</summary>
public sealed class InspectCommand : ICliCommand
{
    public Command Build()
    {
        var dir = new Argument<string>("model-dir") { Description = "Hugging Face model folder (config.json + *.safetensors)" };
        var json = new Option<bool>("--json") { Description = "print JSON instead of a table" };
        var cmd = new Command("inspect", "show a model's architecture, parameter counts, dtypes and memory");
        cmd.Arguments.Add(dir);
        cmd.Options.Add(json);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var model = CausalLM.Load(pr.GetValue(dir)!);
            var report = ModelReport.Of(model);
            Console.WriteLine(pr.GetValue(json) ? report.ToJson() : report.ToText());
            return 0;
        }));
        return cmd;
    }
}
