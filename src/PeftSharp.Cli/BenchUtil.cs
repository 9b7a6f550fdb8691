using PeftSharp.Tensors;

namespace PeftSharp.Cli;

internal static class BenchUtil
{
    public static double Median(IReadOnlyList<double> xs)
    {
        if (xs.Count == 0) return double.NaN;
        var s = xs.OrderBy(x => x).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    public static double PeakRssMb() => PeftSharp.Training.ProcessMemory.PeakRssMb();

    public static DType ParseDType(string s) => s.ToLowerInvariant() switch
    {
        "bf16" or "bfloat16" => DType.BF16,
        "f16" or "fp16" or "float16" => DType.F16,
        "f32" or "fp32" or "float32" => DType.F32,
        _ => throw new PeftException($"--dtype: expected bf16, f16 or f32, got '{s}'"),
    };
}
