using System.CommandLine;
using PeftSharp.IO;
using PeftSharp.Models;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft convert &lt;model-dir&gt; --dtype bf16 --out dir`: rewrite a checkpoint's weights in another dtype.</summary>
internal sealed class ConvertCommand : ICliCommand
{
    public Command Build()
    {
        var dir = ModelLocator.Argument();
        var output = new Option<string>("--out") { Required = true };
        var dtype = new Option<string>("--dtype") { Description = "bf16, f16 or f32", DefaultValueFactory = _ => "bf16" };
        var cmd = new Command("convert", "rewrite a model's weights in another dtype (config, shards and tokenizer files)");
        cmd.Arguments.Add(dir);
        cmd.Options.Add(output);
        cmd.Options.Add(dtype);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var model = CausalLM.Load(ModelLocator.Value(pr, dir));
            HfCheckpoint.Write(pr.GetValue(output)!, model, pr.GetValue(dir), BenchUtil.ParseDType(pr.GetValue(dtype)!));
            Console.WriteLine($"→ {pr.GetValue(output)}");
            return 0;
        }));
        return cmd;
    }
}
