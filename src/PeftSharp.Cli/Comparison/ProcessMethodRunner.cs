using System.Diagnostics;

namespace PeftSharp.Cli.Comparison;

/// <summary>
/// Runs each method as a child process of the peft executable, so that each method's peak memory is its own and one
/// method's failure cannot take the others down. stdout and stderr both go to the method's train.log.
/// </summary>
internal sealed class ProcessMethodRunner : IMethodRunner
{
    /// <summary>Exit status of a process ended by SIGINT (128 + 2).</summary>
    public const int InterruptedExitCode = 130;

    readonly string _fileName;
    readonly IReadOnlyList<string> _prefix;

    /// <param name="fileName">The executable: the peft apphost, or `dotnet`.</param>
    /// <param name="prefixArguments">Arguments before `train` (the path of peft.dll when <paramref name="fileName"/> is dotnet).</param>
    public ProcessMethodRunner(string fileName, IReadOnlyList<string> prefixArguments)
    {
        _fileName = fileName;
        _prefix = prefixArguments;
    }

    /// <summary>The runner for the current process: the same apphost, or `dotnet peft.dll` when started that way
    /// (`dotnet run` starts the apphost).</summary>
    public static ProcessMethodRunner ForCurrentProcess(string entryAssemblyPath)
    {
        string exe = Environment.ProcessPath ?? throw new PeftException("cannot tell which executable is running (Environment.ProcessPath is null)");
        string name = Path.GetFileNameWithoutExtension(exe);
        return name.Equals("dotnet", StringComparison.OrdinalIgnoreCase)
            ? new ProcessMethodRunner(exe, [entryAssemblyPath])
            : new ProcessMethodRunner(exe, []);
    }

    public MethodRunOutcome Run(IReadOnlyList<string> trainArguments, string logPath, Action<string>? onLine, CancellationToken cancel)
    {
        var psi = new ProcessStartInfo(_fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            CreateNoWindow = true,
        };
        foreach (var a in _prefix) psi.ArgumentList.Add(a);
        foreach (var a in trainArguments) psi.ArgumentList.Add(a);

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(logPath))!);
        using var log = new StreamWriter(logPath, append: false) { AutoFlush = true };
        log.WriteLine("$ " + string.Join(" ", psi.ArgumentList.Prepend(_fileName).Select(Quote)));
        var gate = new object();
        string? lastError = null, lastLine = null;
        void Line(string? l)
        {
            if (l == null) return;
            lock (gate)
            {
                log.WriteLine(l);
                if (l.StartsWith("error:", StringComparison.Ordinal)) lastError = l;
                if (!string.IsNullOrWhiteSpace(l)) lastLine = l;
            }
            onLine?.Invoke(l);
        }

        using var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => Line(e.Data);
        p.ErrorDataReceived += (_, e) => Line(e.Data);
        try { p.Start(); }
        catch (System.ComponentModel.Win32Exception e) { throw new PeftException($"cannot start {_fileName}: {e.Message}"); }
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        using (cancel.Register(() => { try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } }))
            p.WaitForExit();
        cancel.ThrowIfCancellationRequested();
        // Ctrl+C reaches the child too (same process group); its 130 exit means "interrupted", not "method failed".
        if (p.ExitCode == InterruptedExitCode) throw new OperationCanceledException("training interrupted (SIGINT)");
        if (p.ExitCode == 0) return new MethodRunOutcome(0, null);
        lock (gate) return new MethodRunOutcome(p.ExitCode, lastError ?? (lastLine != null ? $"exit code {p.ExitCode}: {lastLine}" : $"exit code {p.ExitCode}, no output"));
    }

    static string Quote(string a) => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./=:,+".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";
}
