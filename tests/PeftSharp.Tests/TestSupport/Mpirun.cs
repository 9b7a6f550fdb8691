using System.Diagnostics;

namespace PeftSharp.Tests.TestSupport;

/// <summary>Runs the `peft` CLI as child processes: alone, or as N ranks under Open MPI's mpirun.</summary>
internal static class Mpirun
{
    public static string? Path { get; } = Find();

    static string? Find()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var p = System.IO.Path.Combine(dir, "mpirun");
            if (File.Exists(p)) return p;
        }
        return null;
    }

    static string Dotnet => Environment.ProcessPath!.EndsWith("dotnet") ? Environment.ProcessPath : "dotnet";
    static string PeftDll => System.IO.Path.Combine(AppContext.BaseDirectory, "peft.dll");

    /// <summary>The process for `peft args` (ranks == 0: without mpirun), output redirected, not yet started.</summary>
    public static ProcessStartInfo StartInfo(int ranks, IEnumerable<string> args)
    {
        Assert.True(File.Exists(PeftDll), $"{PeftDll} missing (the test project references PeftSharp.Cli)");
        var psi = new ProcessStartInfo(ranks == 0 ? Dotnet : Path!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (ranks > 0)
            foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", ranks.ToString(), Dotnet }) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add(PeftDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        // Ranks talk over shared memory/loopback only; no warnings about missing high-speed networks.
        psi.Environment["OMPI_MCA_btl"] = "self,vader,tcp";
        psi.Environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none";
        psi.Environment["OMPI_MCA_btl_base_warn_component_unused"] = "0";
        return psi;
    }

    /// <summary>Runs to the end; (exit code, stdout + stderr).</summary>
    public static (int Code, string Output) Run(int ranks, IEnumerable<string> args)
    {
        using var p = Process.Start(StartInfo(ranks, args))!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }
}

/// <summary>A fact that runs only where Open MPI's mpirun is installed (CI installs openmpi-bin).</summary>
internal sealed class MpiFactAttribute : FactAttribute
{
    public MpiFactAttribute()
    {
        if (Mpirun.Path == null) Skip = "mpirun not found on PATH: install Open MPI (apt-get install openmpi-bin libopenmpi-dev) to run the data-parallel tests";
    }
}
