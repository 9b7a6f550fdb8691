namespace PeftSharp.Cli.Comparison;

/// <summary>Exit code of one training process and its error line (null when it succeeded).</summary>
internal sealed record MethodRunOutcome(int ExitCode, string? Error);

/// <summary>Runs `peft train` with the given arguments, its output going to <paramref name="logPath"/> (and each line
/// to <paramref name="onLine"/>). The real runner starts a separate process; tests inject a fake one.</summary>
internal interface IMethodRunner
{
    MethodRunOutcome Run(IReadOnlyList<string> trainArguments, string logPath, Action<string>? onLine, CancellationToken cancel);
}
