using System.Diagnostics;

namespace PeftSharp.Tests.Cli;

/// <summary>Runs the real `peft` (peft.dll beside the tests) as a child process, with extra environment variables,
/// a working folder and piped standard input.</summary>
public static class PeftProcess
{
    public static (int Code, string Stdout, string Stderr) Run(string[] args, IDictionary<string, string>? env = null,
        string? stdin = null, string? workingDir = null)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "peft.dll");
        Assert.True(File.Exists(dll), $"{dll} missing (the test project references PeftSharp.Cli)");
        var psi = new ProcessStartInfo(Environment.ProcessPath!.EndsWith("dotnet") ? Environment.ProcessPath : "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
            WorkingDirectory = workingDir ?? Directory.GetCurrentDirectory(),
        };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var outTask = p.StandardOutput.ReadToEndAsync();
        if (stdin != null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        p.WaitForExit();
        return (p.ExitCode, outTask.Result, err.Result);
    }

    public static string TempDir(string tag)
    {
        var d = Path.Combine(Path.GetTempPath(), $"peftsharp-{tag}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>A small prompt/completion file in the demo's style (verse → testament), n records.</summary>
    public static string DemoLikeData(string dir, int n, string name = "data.jsonl")
    {
        string path = Path.Combine(dir, name);
        File.WriteAllLines(path, Enumerable.Range(0, n).Select(i =>
            $"{{\"prompt\": \"Verse: And the LORD spake unto Moses, saying {i}.\\nTestament:\", \"completion\": \" {(i % 2 == 0 ? "Old" : "New")} Testament\"}}"));
        return path;
    }

    /// <summary>The embedded default model (copied beside the tests), optionally copied with a chat template added.</summary>
    public static string DefaultModel => Path.Combine(AppContext.BaseDirectory, "assets", "default-model");

    public static string DefaultModelWithChatTemplate(string dir)
    {
        string model = Path.Combine(dir, "chat-model");
        Directory.CreateDirectory(model);
        foreach (var f in Directory.GetFiles(DefaultModel)) File.Copy(f, Path.Combine(model, Path.GetFileName(f)));
        File.WriteAllText(Path.Combine(model, "chat_template.jinja"),
            "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}");
        return model;
    }
}
