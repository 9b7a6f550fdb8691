using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace PeftSharp.Tests.TestSupport;

/// <summary>
/// Every temporary file of a test run (this process's and its children's: Path.GetTempPath reads TMPDIR) goes under
/// one folder, removed when the run ends. Folders of earlier runs whose process is gone (a crash, a kill) are removed
/// at the start. Without this, each run of the suite left a few hundred MiB of model folders in /tmp.
/// </summary>
internal static class TestTempRoot
{
    const string Prefix = "peftsharp-tests-";

    [ModuleInitializer]
    internal static void Initialize()
    {
        string system = Path.GetTempPath();
        RemoveAbandoned(system);
        string root = Path.Combine(system, $"{Prefix}{Environment.ProcessId}-{Guid.NewGuid():N}"[..(Prefix.Length + 24)]);
        Directory.CreateDirectory(root);
        Environment.SetEnvironmentVariable("TMPDIR", root);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
    }

    static void RemoveAbandoned(string system)
    {
        foreach (var dir in Directory.EnumerateDirectories(system, Prefix + "*"))
        {
            var pidText = Path.GetFileName(dir)[Prefix.Length..].Split('-')[0];
            if (!int.TryParse(pidText, out int pid) || IsAlive(pid)) continue;
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    static bool IsAlive(int pid)
    {
        try { using var p = Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }
}
