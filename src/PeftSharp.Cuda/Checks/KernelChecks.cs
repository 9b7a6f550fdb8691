using PeftSharp.Compute;
using PeftSharp.Cuda.Kernels;
using PeftSharp.Kernels;
using PeftSharp.Quantization;
using PeftSharp.Tensors;

namespace PeftSharp.Cuda;

/// <summary>
/// Every device kernel against the CPU backend on the same seeded inputs (tiny shapes, never all-zero): what CI runs
/// on ILGPU's CPU accelerator and `peft device check --device cuda` runs on a GPU. Tolerances: float32 kernels 2e-5
/// relative (summation order differs), dtype widening and 4-bit dequantization exact on the CPU accelerator (1e-6 on a
/// GPU, which may fuse a multiply-add).
/// </summary>
internal sealed unsafe class KernelChecks(GpuDevice dev, ComputeContext cpu)
{
    public const double Float32Tolerance = 2e-5;
    double ExactTolerance => dev.IsCuda ? 1e-6 : 0;

    IComputeBackend Cpu => cpu.Backend;
    DeviceKernels K => dev.Kernels;

    public static float[] RandomFloats(int seed, int n, float scale = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return a;
    }

    public IEnumerable<Func<CheckResult>> All() =>
    [
        Gemm, WidenBf16, () => Dequantize(Quant4Type.NF4, false), () => Dequantize(Quant4Type.FP4, false), () => Dequantize(Quant4Type.NF4, true),
        RmsNorm, Rope, () => Attention(0, false), () => Attention(3, false), () => Attention(0, true), SwiGlu, Embedding, CrossEntropy, AdamW,
    ];

    public CheckResult Gemm()
    {
        double worst = 0;
        int m = 5, n = 7, k = 9;
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                foreach (float beta in new[] { 0f, 0.5f })
                {
                    int lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 3;
                    var a = RandomFloats(1, (ta ? k : m) * lda);
                    var b = RandomFloats(2, (tb ? n : k) * ldb);
                    var c0 = RandomFloats(3, m * ldc);
                    var want = (float[])c0.Clone();
                    fixed (float* pa = a, pb = b, pc = want)
                        Cpu.Gemm(ta, tb, m, n, k, 0.75f, MatrixView.F32(pa, ta ? k : m, ta ? m : k, lda), MatrixView.F32(pb, tb ? n : k, tb ? k : n, ldb), beta, pc, ldc);
                    using var da = dev.Upload<float>(a);
                    using var db = dev.Upload<float>(b);
                    using var dc = dev.Upload<float>(c0);
                    dev.Gemm.Gemm(ta, tb, m, n, k, 0.75f, da.View, lda, db.View, ldb, beta, dc.View, ldc);
                    worst = Math.Max(worst, CheckResult.RelativeError(dc.ToArray(), want));
                }
        return new CheckResult($"gemm ({dev.Gemm.Name})", worst, Float32Tolerance);
    }

    public CheckResult WidenBf16()
    {
        var f = RandomFloats(4, 257, 3f);
        var bits = new ushort[f.Length];
        fixed (ushort* pb = bits) DTypeConvert.FromFloat(f, DType.BF16, (byte*)pb);
        var want = new float[f.Length];
        fixed (ushort* pb = bits) DTypeConvert.ToFloat((byte*)pb, DType.BF16, want);
        using var d16 = dev.Upload<ushort>(bits);
        using var d32 = dev.Allocate<float>(f.Length);
        K.WidenBf16(d16.View, d32.View, f.Length);
        return new CheckResult("widen bf16", CheckResult.RelativeError(d32.ToArray(), want), ExactTolerance);
    }

    public CheckResult Dequantize(Quant4Type type, bool doubleQuant)
    {
        int rows = 12, cols = 33;   // odd columns: chunks start on odd elements (low nibble first)
        var w = RandomFloats(5, rows * cols, 0.2f);
        using var q = Quantized4Bit.Quantize(cpu, w, [rows, cols], type, 64, doubleQuant);
        int row0 = 3, count = 7;
        var want = new float[count * cols];
        q.DequantizeRows(cpu, row0, count, want);
        using var dq = new DeviceQuant4(dev, q);
        using var dst = dev.Allocate<float>(count * cols);
        K.Dequantize4(dq, (long)row0 * cols, (long)count * cols, dst.View);
        return new CheckResult($"dequantize {type}{(doubleQuant ? " double-quant" : "")}", CheckResult.RelativeError(dst.ToArray(), want), ExactTolerance);
    }

    public CheckResult RmsNorm()
    {
        int n = 6, c = 40;
        var x = RandomFloats(6, n * c); var w = RandomFloats(7, c); var dy = RandomFloats(8, n * c);
        var dx0 = RandomFloats(9, n * c, 0.1f); var dw0 = RandomFloats(10, c, 0.1f);
        var y = new float[n * c]; var rstd = new float[n];
        Cpu.RmsNormForward(y, rstd, x, w, n, c, 1e-5f);
        var dx = (float[])dx0.Clone(); var dw = (float[])dw0.Clone();
        Cpu.RmsNormBackward(dx, dw, dy, x, w, rstd, n, c);
        using var gx = dev.Upload<float>(x); using var gw = dev.Upload<float>(w); using var gdy = dev.Upload<float>(dy);
        using var gy = dev.Allocate<float>(n * c); using var gr = dev.Allocate<float>(n);
        using var gdx = dev.Upload<float>(dx0); using var gdw = dev.Upload<float>(dw0);
        K.RmsNormForward(gy.View, gr.View, gx.View, gw.View, n, c, 1e-5f);
        K.RmsNormBackward(gdx.View, gdw.View, gdy.View, gx.View, gw.View, gr.View, n, c);
        return new CheckResult("rmsnorm forward/backward", CheckResult.Worst(CheckResult.RelativeError(gy.ToArray(), y),
            CheckResult.RelativeError(gr.ToArray(), rstd), CheckResult.RelativeError(gdx.ToArray(), dx), CheckResult.RelativeError(gdw.ToArray(), dw)), Float32Tolerance);
    }

    public CheckResult Rope()
    {
        int n = 9, heads = 3, d = 16;
        var table = new RopeTable(d, 64, 10000, null);
        var r = new Random(11);
        var positions = Enumerable.Range(0, n).Select(_ => r.Next(40)).ToArray();
        var x = RandomFloats(12, n * heads * d);
        var fwd = (float[])x.Clone(); Cpu.RopeForward(fwd, positions, heads, table);
        var bwd = (float[])x.Clone(); Cpu.RopeBackward(bwd, positions, heads, table);
        var (cos, sin) = table.TablesFor(positions);
        using var gc = dev.Upload<float>(cos); using var gs = dev.Upload<float>(sin); using var gp = dev.Upload<int>(positions);
        using var gf = dev.Upload<float>(x); using var gb = dev.Upload<float>(x);
        K.Rope(gf.View, gp.View, gc.View, gs.View, n, heads, d / 2, inverse: false);
        K.Rope(gb.View, gp.View, gc.View, gs.View, n, heads, d / 2, inverse: true);
        return new CheckResult("rope forward/backward", CheckResult.Worst(CheckResult.RelativeError(gf.ToArray(), fwd), CheckResult.RelativeError(gb.ToArray(), bwd)), Float32Tolerance);
    }

    public CheckResult Attention(int window, bool segments)
    {
        int batch = 2, T = 7, hq = 4, hkv = 2, d = 8, n = batch * T;
        var q = RandomFloats(13, n * hq * d); var k = RandomFloats(14, n * hkv * d); var v = RandomFloats(15, n * hkv * d); var dout = RandomFloats(16, n * hq * d);
        int[] seg = segments ? Enumerable.Range(0, n).Select(i => (i % T) < 3 ? 0 : 1).ToArray() : [];
        var o = new float[n * hq * d]; var lse = new float[n * hq];
        Cpu.AttentionForward(o, lse, q, k, v, seg, batch, T, hq, hkv, d, window);
        var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
        Cpu.AttentionBackward(dq, dk, dv, dout, o, lse, q, k, v, seg, batch, T, hq, hkv, d, window);
        using var gq = dev.Upload<float>(q); using var gk = dev.Upload<float>(k); using var gv = dev.Upload<float>(v); using var gdo = dev.Upload<float>(dout);
        using var gseg = dev.Upload<int>(segments ? seg : new int[n]);
        using var go = dev.Allocate<float>(o.Length); using var gl = dev.Allocate<float>(lse.Length); using var delta = dev.Allocate<float>(lse.Length);
        using var gdq = dev.Allocate<float>(q.Length); using var gdk = dev.Allocate<float>(k.Length); using var gdv = dev.Allocate<float>(v.Length);
        var shape = new AttentionShape(T, hq, hkv, d, window, segments);
        K.AttentionForward(go.View, gl.View, gq.View, gk.View, gv.View, gseg.View, n, shape);
        K.AttentionBackward(gdq.View, gdk.View, gdv.View, gdo.View, go.View, gl.View, gq.View, gk.View, gv.View, gseg.View, delta.View, n, shape);
        return new CheckResult($"attention forward/backward (window {window}{(segments ? ", packed segments" : "")})", CheckResult.Worst(
            CheckResult.RelativeError(go.ToArray(), o), CheckResult.RelativeError(gl.ToArray(), lse), CheckResult.RelativeError(gdq.ToArray(), dq),
            CheckResult.RelativeError(gdk.ToArray(), dk), CheckResult.RelativeError(gdv.ToArray(), dv)), Float32Tolerance);
    }

    public CheckResult SwiGlu()
    {
        int n = 300;
        var g = RandomFloats(17, n, 4f); var u = RandomFloats(18, n); var dout = RandomFloats(19, n);
        var o = new float[n]; Cpu.SwiGluForward(o, g, u);
        var dg = new float[n]; var du = new float[n]; Cpu.SwiGluBackward(dg, du, dout, g, u);
        using var gg = dev.Upload<float>(g); using var gu = dev.Upload<float>(u); using var gdo = dev.Upload<float>(dout);
        using var go = dev.Allocate<float>(n); using var gdg = dev.Allocate<float>(n); using var gdu = dev.Allocate<float>(n);
        K.SwiGluForward(go.View, gg.View, gu.View, n);
        K.SwiGluBackward(gdg.View, gdu.View, gdo.View, gg.View, gu.View, n);
        return new CheckResult("swiglu forward/backward", CheckResult.Worst(CheckResult.RelativeError(go.ToArray(), o),
            CheckResult.RelativeError(gdg.ToArray(), dg), CheckResult.RelativeError(gdu.ToArray(), du)), Float32Tolerance);
    }

    public CheckResult Embedding()
    {
        int vocab = 11, c = 6, n = 9;
        var w = RandomFloats(20, vocab * c);
        var ids = new[] { 3, 0, 10, 3, 7, 7, 1, 3, 5 };
        var dout = RandomFloats(21, n * c);
        double worst = 0;
        foreach (var dtype in new[] { DType.F32, DType.BF16 })
        {
            using var t = new Tensor(dtype, vocab, c);
            DTypeConvert.FromFloat(w, dtype, t.Data);
            var want = new float[n * c];
            Cpu.EmbeddingForward(want, ids, t.AsMatrix());
            using var dm = new DeviceMatrix(dev, t);
            using var gids = dev.Upload<int>(ids);
            using var got = dev.Allocate<float>(n * c);
            K.EmbeddingForward(got.View, gids.View, dm, n);
            worst = Math.Max(worst, CheckResult.RelativeError(got.ToArray(), want));
        }
        var dw = new float[vocab * c];
        Cpu.EmbeddingBackward(dw, dout, ids, c);
        using var gdo = dev.Upload<float>(dout); using var gi = dev.Upload<int>(ids); using var gdw = dev.Allocate<float>(vocab * c);
        K.EmbeddingBackward(gdw.View, gdo.View, gi.View, n, c);
        worst = Math.Max(worst, CheckResult.RelativeError(gdw.ToArray(), dw));
        return new CheckResult("embedding forward (f32, bf16)/backward", worst, Float32Tolerance);
    }

    public CheckResult CrossEntropy()
    {
        int n = 6, c = 16, vocab = 40;
        var h = RandomFloats(22, n * c);
        var targets = new[] { 5, -100, 39, 0, 17, 17 };
        using var head = new Tensor(DType.BF16, vocab, c);
        DTypeConvert.FromFloat(RandomFloats(23, vocab * c), DType.BF16, head.Data);
        float gradScale = 0.2f;
        var dh = new float[n * c];
        var (loss, count) = Cpu.CrossEntropy(h, head.AsMatrix(), targets, n, c, gradScale, dh, Span<float>.Empty);
        using var dm = new DeviceMatrix(dev, head);
        using var gh = dev.Upload<float>(h); using var gt = dev.Upload<int>(targets); using var gdh = dev.Allocate<float>(n * c);
        using var scratch = dev.Allocate<float>(16 * c);
        // vocabulary chunks of 16 (the last partial) and row chunks of 4: every chunk path runs
        using var ce = new DeviceCrossEntropy(dev, n, vocab, 16, logitsBudget: 4L * vocab);
        var (gLoss, gCount) = ce.Run(gh.View, dm, gt.View, targets, n, c, gradScale, gdh.View, scratch.View);
        double err = gCount != count ? double.PositiveInfinity
            : CheckResult.Worst(CheckResult.RelativeError(gLoss, loss), CheckResult.RelativeError(gdh.ToArray(), dh));
        return new CheckResult("cross-entropy with the LM head (chunked rows and vocabulary)", err, Float32Tolerance);
    }

    public CheckResult AdamW()
    {
        int n = 500;
        var p0 = RandomFloats(24, n);
        var host = new Optim.AdamW(cpu) { WeightDecay = 0.01f };
        var p = (float[])p0.Clone();
        using var gp = dev.Upload<float>(p0); using var gg = dev.Allocate<float>(n); using var gm = dev.Allocate<float>(n); using var gv = dev.Allocate<float>(n);
        for (int step = 1; step <= 3; step++)
        {
            var g = RandomFloats(100 + step, n);
            host.BeginStep();
            host.Step(0, p, g, 1e-2f);
            gg.Upload(g);
            K.AdamW(gp.View, gg.View, gm.View, gv.View, n, new AdamScalars(1e-2f, host.Beta1, host.Beta2, host.Eps, host.WeightDecay, step));
        }
        return new CheckResult("adamw (3 steps)", CheckResult.RelativeError(gp.ToArray(), p), Float32Tolerance);
    }
}
