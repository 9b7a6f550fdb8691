using System.CommandLine;
using System.Text.Json.Nodes;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft device check --device cuda[:N]`: the CUDA backend's self-check — every device kernel and whole LoRA / QLoRA
/// training steps compared with the CPU on tiny shapes, one JSON line per check, exit code 1 when any fails. The GPU's
/// test suite on machines without the .NET SDK (a self-contained publish runs it); `--device cpu` runs the same code on
/// ILGPU's CPU accelerator.
/// </summary>
internal sealed class DeviceCommand : ICliCommand
{
    public Command Build()
    {
        var device = new Option<string>("--device") { Description = "cuda, cuda:N, or cpu (ILGPU's CPU accelerator)", DefaultValueFactory = _ => "cuda" };
        var only = new Option<string?>("--only") { Description = "kernels or steps (default: both)" };
        var check = new Command("check", "compare every CUDA-backend kernel and a whole training step with the CPU (JSON lines; exit 1 on a failure)");
        check.Options.Add(device);
        check.Options.Add(only);
        check.SetAction(pr => CliErrors.Run(() =>
        {
            bool ok = PeftSharp.Cuda.DeviceCheck.Run(pr.GetValue(device)!, (name, error, tolerance, passed) =>
                Console.WriteLine(new JsonObject
                {
                    ["check"] = name, ["relative_error"] = double.IsFinite(error) ? error : null, ["tolerance"] = tolerance, ["passed"] = passed,
                }.ToJsonString()), pr.GetValue(only));
            Console.WriteLine(ok ? "all device checks passed" : "some device checks FAILED");
            return ok ? 0 : 1;
        }));
        var cmd = new Command("device", "the CUDA backend: self-check against the CPU");
        cmd.Subcommands.Add(check);
        return cmd;
    }
}
