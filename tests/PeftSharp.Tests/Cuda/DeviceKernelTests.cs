using PeftSharp.Cuda;
using PeftSharp.Quantization;

namespace PeftSharp.Tests.Cuda;

/// <summary>
/// Every CUDA-backend kernel, run on ILGPU's CPU accelerator (the same C# kernels that compile to PTX), against the CPU
/// backend on seeded inputs. The GEMM here is the ILGPU kernel; cuBLAS runs only on a GPU (<see cref="GpuOnlyTests"/>).
/// </summary>
public sealed class DeviceKernelTests(IlgpuCpuFixture f) : IClassFixture<IlgpuCpuFixture>
{
    static void AssertPassed(CheckResult r) =>
        Assert.True(r.Passed, $"{r.Name}: relative error {r.Error:g3} exceeds {r.Tolerance:g3}");

    [Fact] public void Gemm_all_transposes_strides_and_beta_match_the_cpu() => AssertPassed(f.Checks.Gemm());
    [Fact] public void Bf16_widening_is_exact() => AssertPassed(f.Checks.WidenBf16());
    [Fact] public void Nf4_dequantization_is_exact() => AssertPassed(f.Checks.Dequantize(Quant4Type.NF4, false));
    [Fact] public void Fp4_dequantization_is_exact() => AssertPassed(f.Checks.Dequantize(Quant4Type.FP4, false));
    [Fact] public void Double_quantized_nf4_dequantization_is_exact() => AssertPassed(f.Checks.Dequantize(Quant4Type.NF4, true));
    [Fact] public void RmsNorm_forward_and_backward_match() => AssertPassed(f.Checks.RmsNorm());
    [Fact] public void Rope_forward_and_backward_match() => AssertPassed(f.Checks.Rope());
    [Fact] public void Causal_gqa_attention_matches() => AssertPassed(f.Checks.Attention(0, false));
    [Fact] public void Sliding_window_attention_matches() => AssertPassed(f.Checks.Attention(3, false));
    [Fact] public void Packed_segment_attention_matches() => AssertPassed(f.Checks.Attention(0, true));
    [Fact] public void SwiGlu_forward_and_backward_match() => AssertPassed(f.Checks.SwiGlu());
    [Fact] public void Embedding_forward_and_backward_match() => AssertPassed(f.Checks.Embedding());
    [Fact] public void Cross_entropy_with_lm_head_matches_over_chunks() => AssertPassed(f.Checks.CrossEntropy());
    [Fact] public void AdamW_matches_torch_arithmetic() => AssertPassed(f.Checks.AdamW());

    [Fact]
    public void A_check_can_fail()
    {
        // The comparison is not vacuous: a perturbed result is out of bounds.
        var want = KernelChecks.RandomFloats(1, 100);
        var got = (float[])want.Clone();
        got[17] += 0.01f;
        Assert.False(new CheckResult("x", CheckResult.RelativeError(got, want), KernelChecks.Float32Tolerance).Passed);
        Assert.False(new CheckResult("nan", CheckResult.RelativeError([float.NaN], [1f]), 1).Passed);
    }
}
