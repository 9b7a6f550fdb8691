using PeftSharp.Compute;
using PeftSharp.Quantization;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace PeftSharp.Peft;

/// <summary>
/// The LoftQ iteration of PEFT's utils/loftq_utils.py loftq_init on one weight W (out, in), in float32 as PEFT runs it
/// with the SVD in float64:
/// <code>
///   res = W
///   repeat loftq_iter times:
///     Q    = quantize_4bit(res)                       (bitsandbytes NF4, as PEFT's 4-bit path)
///     U, S, Vᵀ = top-r SVD of (W − dequant(Q))
///     B = U·diag(√(S/s)),  A = diag(√(S/s))·Vᵀ
///     res = W − s·B·A                                 (skipped after the last step, as PEFT does)
/// </code>
/// The result is the last Q and the (A, B) fitted to it, so Q + s·B·A approximates W. PEFT splits √S evenly between
/// A and B and applies no scaling: its init is exact only for s = lora_alpha / r = 1. Here S is divided by s under the
/// roots (as PEFT's own PiSSA and CorDA inits do), so Q + s·B·A ≈ W for any lora_alpha; at s = 1 the factors are PEFT's.
/// The quantizer is the run's 4-bit format (PEFT's is NF4, blocksize 64, no double quantization), so the Q the factors
/// were fitted to is exactly the frozen base the run trains over.
/// </summary>
/// <summary>Which top-r SVD LoftQ uses.</summary>
internal enum LoftQSvd
{
    /// <summary><see cref="TruncatedSvd.Krylov"/> to <see cref="TruncatedSvd.KrylovTolerance"/>: the default.</summary>
    Krylov,
    /// <summary><see cref="TruncatedSvd.Exact"/> (full eigen-decomposition of the Gram matrix): the reference.</summary>
    Exact,
}

internal static class LoftQ
{
    public const string Init = "loftq";

    public static bool IsLoftQ(string init) => init == Init;

    /// <summary>PEFT's own 4-bit format for LoftQ: bnb.nn.Params4bit(quant_type="nf4", compress_statistics=False).</summary>
    public static readonly QuantizeOptions PeftFormat = new(Quant4Type.NF4, DoubleQuant: false, BlockSize: 64);

    /// <summary>One weight's LoftQ: the quantized base, the factors, and the relative errors along the way.</summary>
    /// <param name="Q">quantize_4bit of the last residual: the new frozen base (owned by the caller).</param>
    /// <param name="A">(r, in) float32.</param>
    /// <param name="B">(out, r) float32.</param>
    /// <param name="PlainError">‖W − NF4(W)‖ / ‖W‖: plain QLoRA's error (the first step's Q).</param>
    /// <param name="Errors">‖W − (Q_k + s·B_k·A_k)‖ / ‖W‖ after step k = 1 … loftq_iter; step k's state is exactly what
    /// loftq_iter = k returns, so one run gives the curve.</param>
    /// <param name="WeightNorm">‖W‖ (Frobenius, float64), to combine modules into a total.</param>
    /// <param name="SvdSeconds">Wall time spent in the SVDs, all steps together.</param>
    /// <param name="Krylov">How each step's <see cref="TruncatedSvd.Krylov"/> ended (null entries with <see cref="LoftQSvd.Exact"/>).</param>
    public sealed record Result(Quantized4Bit Q, float[] A, float[] B, double PlainError, double[] Errors, double WeightNorm,
        double SvdSeconds, KrylovStats?[] Krylov);

    /// <summary>Runs the iteration on w (out·in, row-major float32). <paramref name="name"/> names the tensor in errors.</summary>
    public static Result Run(ComputeContext ctx, ReadOnlySpan<float> w, int outF, int inF, int rank, float scaling, int iterations,
        QuantizeOptions format, string name, LoftQSvd svdMethod = LoftQSvd.Krylov)
    {
        if (w.Length != (long)outF * inF) throw new ArgumentException($"{name}: expected {outF}×{inF} values, got {w.Length}");
        if (iterations < 1) throw new PeftException($"{name}: loftq_iter must be ≥ 1, got {iterations}");
        if (rank < 1 || rank > Math.Min(outF, inF)) throw new PeftException($"{name}: LoftQ rank {rank} must be in [1, min(out, in) = {Math.Min(outF, inF)}]");
        if (!(scaling > 0) || !float.IsFinite(scaling)) throw new PeftException($"{name}: LoftQ needs a finite scaling > 0, got {scaling}");
        int n = w.Length;
        var weight = w.ToArray();
        double norm = Math.Sqrt(SumSquares(weight));
        var res = weight.ToArray();
        var deq = new float[n];
        var e = new double[n];
        var sba = new float[n];
        var a = new float[rank * inF];
        var b = new float[outF * rank];
        var errors = new double[iterations];
        var krylov = new KrylovStats?[iterations];
        var svdClock = new System.Diagnostics.Stopwatch();
        double plain = 0;
        Quantized4Bit? q = null;
        try
        {
            for (int it = 0; it < iterations; it++)
            {
                q?.Dispose();
                q = Quantized4Bit.Quantize(ctx, res, [outF, inF], format.Type, format.BlockSize, format.DoubleQuant, name);
                q.Dequantize(ctx, deq);
                for (int i = 0; i < n; i++) e[i] = (double)weight[i] - deq[i];
                if (it == 0) plain = Math.Sqrt(SumSquares(e)) / Math.Max(norm, double.Epsilon);
                svdClock.Start();
                SvdResult svd;
                if (svdMethod == LoftQSvd.Exact) svd = TruncatedSvd.Exact(ctx, e, outF, inF, rank);
                else (svd, krylov[it]) = TruncatedSvd.KrylovWithStats(ctx, e, outF, inF, rank);
                svdClock.Stop();
                for (int j = 0; j < rank; j++)
                {
                    float root = (float)Math.Sqrt(svd.S[j] / scaling);
                    for (int c = 0; c < inF; c++) a[j * inF + c] = root * (float)svd.Vt[j * inF + c];
                    for (int o = 0; o < outF; o++) b[o * rank + j] = (float)svd.U[o * rank + j] * root;
                }
                ScaledProduct(ctx, b, a, outF, inF, rank, scaling, sba);
                double err = 0;
                for (int i = 0; i < n; i++)
                {
                    double d = e[i] - sba[i];
                    err += d * d;
                }
                errors[it] = Math.Sqrt(err) / Math.Max(norm, double.Epsilon);
                if (it + 1 == iterations) break;
                TensorPrimitives.Subtract(weight, sba, res);
            }
            return new Result(q!, a, b, plain, errors, norm, svdClock.Elapsed.TotalSeconds, krylov);
        }
        catch
        {
            q?.Dispose();
            throw;
        }
    }

    /// <summary>dst (out, in) = s·B·A in float32, as the forward adds it.</summary>
    static unsafe void ScaledProduct(ComputeContext ctx, float[] b, float[] a, int outF, int inF, int rank, float scaling, float[] dst)
    {
        fixed (float* pb = b, pa = a, pd = dst)
            ctx.Backend.Gemm(false, false, outF, inF, rank, scaling,
                Tensors.MatrixView.F32(pb, outF, rank), Tensors.MatrixView.F32(pa, rank, inF), 0f, pd, inF);
    }

    static double SumSquares(ReadOnlySpan<float> x)
    {
        double s = 0;
        foreach (var v in x) s += (double)v * v;
        return s;
    }

    static double SumSquares(ReadOnlySpan<double> x) => TensorPrimitives.Dot(x, x);
}
