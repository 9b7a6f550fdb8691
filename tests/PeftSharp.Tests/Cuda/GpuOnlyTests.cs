using PeftSharp.Compute;
using PeftSharp.Cuda;
using PeftSharp.Tests.Cli;

namespace PeftSharp.Tests.Cuda;

/// <summary>
/// What only a real NVIDIA GPU can run: the cuBLAS GEMM, the kernels compiled to PTX, and the device step on CUDA
/// (all of <see cref="DeviceCheck"/> on cuda:0). Skipped here when no CUDA device exists; scripts/gpu-check.sh runs the
/// same checks from a self-contained publish on a GPU machine. Without a GPU, `--device cuda` must fail clearly.
/// </summary>
public sealed class GpuOnlyTests
{
    const string NoGpu = "no CUDA device on this machine: the cuBLAS GEMM, the PTX kernels and the CUDA training step run only on an NVIDIA GPU (scripts/gpu-check.sh)";

    static bool CudaPresent()
    {
        try { using var d = GpuDevice.Open(new DeviceName(true, 0)); return true; }
        catch (PeftException) { return false; }
    }

    [SkippableFact]
    public void Every_device_check_passes_on_cuda()
    {
        Skip.IfNot(CudaPresent(), NoGpu);
        var failed = new List<string>();
        bool ok = DeviceCheck.Run("cuda:0", (name, err, tol, passed) => { if (!passed) failed.Add($"{name}: {err:g3} > {tol:g3}"); });
        Assert.True(ok, string.Join("; ", failed));
    }

    [SkippableFact]
    public void Without_a_gpu_device_cuda_says_so_in_one_line()
    {
        Skip.If(CudaPresent(), "this machine has a CUDA device");
        var e = Assert.Throws<PeftException>(() => CudaCompute.Create(new ComputeOptions { Device = "cuda" }));
        Assert.Contains("--device cuda:0", e.Message);
        Assert.Contains("--device cpu", e.Message);

        var cfg = Path.Combine(PeftProcess.TempDir("nogpu"), "config.json");
        File.WriteAllText(cfg, """{"model_type":"llama","vocab_size":64,"hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":2}""");
        var (code, stdout, stderr) = PeftProcess.Run(["bench", "train", "--config", cfg, "--device", "cuda", "--batch", "1", "--seq", "8", "--steps", "1"]);
        Assert.Equal(1, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: --device cuda:0:", lines[0]);
        Assert.DoesNotContain("   at ", stderr);
        Assert.Equal("", stdout.Trim());
    }
}

/// <summary>`peft device check` end to end on ILGPU's CPU accelerator: the GPU machine runs exactly this with --device cuda.</summary>
public sealed class DeviceCheckCommandTests
{
    [Fact]
    public void Device_check_of_the_kernels_on_the_ilgpu_cpu_accelerator_passes_with_one_json_line_per_check()
    {
        var (code, stdout, stderr) = PeftProcess.Run(["device", "check", "--device", "cpu", "--only", "kernels"]);
        Assert.True(code == 0, $"exit {code}: {stdout}\n{stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var checks = lines.Where(l => l.StartsWith('{')).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!).ToList();
        Assert.True(checks.Count >= 14, $"{checks.Count} checks: {stdout}");   // the steps are DeviceTrainingTests
        Assert.All(checks, c => Assert.True((bool)c["passed"]!, c.ToJsonString()));
        Assert.Contains(checks, c => ((string)c["check"]!).StartsWith("dequantize NF4 double-quant"));
        Assert.Equal("all device checks passed", lines[^1]);
    }
}
