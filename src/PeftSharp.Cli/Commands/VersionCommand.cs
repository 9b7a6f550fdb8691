using System.CommandLine;
using System.Runtime.Intrinsics.X86;

namespace PeftSharp.Cli.Commands;

/// <summary>`peft info`: version and the compute paths this machine gets.</summary>
internal sealed class InfoCommand : ICliCommand
{
    public Command Build()
    {
        var cmd = new Command("info", "version, CPU features and compute paths");
        cmd.SetAction(_ =>
        {
            Console.WriteLine($"peftsharp {typeof(PeftSharp.PeftException).Assembly.GetName().Version}");
            Console.WriteLine($"cores: {Environment.ProcessorCount}, avx2: {Avx2.IsSupported}, fma: {Fma.IsSupported}");
            return 0;
        });
        return cmd;
    }
}
