using System.CommandLine;

namespace PeftSharp.Cli;

/// <summary>
/// One top-level `peft` command. Every non-abstract implementation in this assembly is discovered at start-up,
/// so adding a command means adding one file under Commands/.
/// </summary>
internal interface ICliCommand
{
    Command Build();
}

/// <summary>One `peft bench &lt;name&gt;` sub-command, discovered the same way.</summary>
internal interface IBenchCommand
{
    Command Build();
}
