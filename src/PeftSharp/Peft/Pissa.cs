using PeftSharp.Compute;
using PeftSharp.Kernels;
using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Peft;

/// <summary>
/// PiSSA initialization (PEFT layer.py pissa_init): on W (out, in) in float32, the top-r SVD W ≈ U_r·S_r·V_rᵀ,
/// S_r /= scaling, A = diag(√S_r)·V_rᵀ (r, in), B = U_r·diag(√S_r) (out, r), and the base weight becomes the residual
/// W − s·B·A, so the model's output is unchanged at step 0 (up to rounding the residual to the storage dtype).
/// "pissa" uses a full-accuracy SVD (PEFT: torch.linalg.svd): the block Krylov one, whose kept pairs are accurate to
/// 1e-9·σ₁² (<see cref="TruncatedSvd.Krylov"/>), about five times faster than the full eigen-decomposition at 2048
/// wide; "pissa_niter_K" the randomized one with K subspace iterations (torch.svd_lowrank).
/// The initial factors are kept on the adapter (A0, B0) so the adapter can be saved as a rank-2r LoRA of the
/// original base (see <see cref="PissaConversion"/>).
/// </summary>
internal static class Pissa
{
    public static bool IsPissa(string init) => init == "pissa" || init.StartsWith("pissa_niter_", StringComparison.Ordinal);

    /// <summary>K of "pissa_niter_K", or null for the exact "pissa". Throws for a malformed K.</summary>
    public static int? Niter(string init, string source)
    {
        if (init == "pissa") return null;
        var k = init["pissa_niter_".Length..];
        if (!int.TryParse(k, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n))
            throw new PeftException($"{source}: init_lora_weights \"{init}\": expected \"pissa_niter_K\" with K a non-negative integer");
        return n;
    }

    /// <summary>Refuses what PiSSA cannot do, before any weight is changed: a quantized base, r &gt; min(out, in).</summary>
    public static void Check(LoraLinear module, int rank, string init)
    {
        // PEFT raises TypeError for a quantized (bnb 4-bit) base: the SVD needs the dense weight.
        if (module.Base is not Linear)
            throw new PeftException($"{module.Name}: init_lora_weights \"{init}\" needs a dense (non-quantized) base weight, " +
                $"but this module is {module.Base.GetType().Name}; load the model unquantized for PiSSA (PEFT raises TypeError here too)");
        if (rank > Math.Min(module.OutFeatures, module.InFeatures))
            throw new PeftException($"{module.Name}: PiSSA rank {rank} exceeds min(out, in) = {Math.Min(module.OutFeatures, module.InFeatures)}");
        Niter(init, module.Name);
    }

    public static unsafe void Initialize(ComputeContext ctx, LoraLinear module, LoraAdapter ad, string init, ulong seed)
    {
        Check(module, ad.Rank, init);
        var frozen = (IFrozenProjection)module.Base;
        int outF = module.OutFeatures, inF = module.InFeatures, r = ad.Rank;
        int? niter = Niter(init, module.Name);

        var wf = new float[outF * inF];
        frozen.ReadRows(ctx, 0, outF, wf);
        var w = new double[wf.Length];
        for (int i = 0; i < w.Length; i++)
        {
            if (!float.IsFinite(wf[i]))
                throw new PeftException($"{module.Name}.weight: element [{i / inF}, {i % inF}] is {wf[i]}; PiSSA needs finite base weights");
            w[i] = wf[i];
        }
        var svd = niter is int k ? TruncatedSvd.Randomized(ctx, w, outF, inF, r, k, seed) : TruncatedSvd.Krylov(ctx, w, outF, inF, r);

        // PEFT computes in float32: S_r / scaling, then √ on both sides.
        var a = ad.A.Value.Floats;   // (r, in)
        var b = ad.B.Value.Floats;   // (out, r)
        for (int j = 0; j < r; j++)
        {
            float root = MathF.Sqrt((float)svd.S[j] / ad.Scaling);
            for (int c = 0; c < inF; c++) a[j * inF + c] = root * (float)svd.Vt[j * inF + c];
            for (int o = 0; o < outF; o++) b[o * r + j] = (float)svd.U[o * r + j] * root;
        }
        ad.InitialA = a.ToArray();
        ad.InitialB = b.ToArray();

        // W ← W − s·B·A, from the float32 factors actually stored, so W_res + s·B·A reproduces W up to rounding.
        var delta = new float[outF * inF];
        fixed (float* d = delta)
            ctx.Backend.Gemm(false, false, outF, inF, r, ad.Scaling, ad.B.Value.AsMatrix(), ad.A.Value.AsMatrix(), 0f, d, inF);
        frozen.AddToWeight(ctx, delta, -1f);
        module.BaseWeightChanged();   // another (DoRA) adapter on this module may have cached the old ‖W_i‖
    }
}
