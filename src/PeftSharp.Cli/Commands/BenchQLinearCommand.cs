using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftSharp.Nn;
using PeftSharp.Quantization;
using PeftSharp.Tensors;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft bench qlinear --out 5632 --in 2048 --tokens 256 --chunks 64,128,256,512`: forward + input-gradient time of one
/// projection with a BF16 weight (dense Linear) and with an NF4 + double-quant weight (QuantizedLinear) per chunk size.
/// </summary>
internal sealed class BenchQLinearCommand : IBenchCommand
{
    public Command Build()
    {
        var outF = new Option<int>("--out") { DefaultValueFactory = _ => 5632 };
        var inF = new Option<int>("--in") { DefaultValueFactory = _ => 2048 };
        var tokens = new Option<int>("--tokens") { DefaultValueFactory = _ => 256 };
        var chunks = new Option<string>("--chunks") { DefaultValueFactory = _ => "64,128,256,512" };
        var reps = new Option<int>("--reps") { DefaultValueFactory = _ => 5 };
        var threads = SharedOptions.Threads();
        var cmd = new Command("qlinear", "4-bit vs BF16 projection: forward + input gradient time by dequantization chunk size");
        foreach (var o in new Option[] { outF, inF, tokens, chunks, reps, threads }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            int o = pr.GetValue(outF), i = pr.GetValue(inF), n = pr.GetValue(tokens);
            var rng = new Random(1);
            var w = new float[(long)o * i];
            for (long k = 0; k < w.Length; k++) w[k] = (float)(rng.NextDouble() - 0.5) * 0.04f;
            using var bf = new Tensor(DType.BF16, o, i);
            unsafe { DTypeConvert.FromFloat(w, DType.BF16, bf.Data); }
            var dense = new Linear("dense", bf, null);
            using var q = new QuantizedLinear("q", Quantized4Bit.Quantize(compute, bf, Quant4Type.NF4, 64, true, "q"), null);
            var x = new float[n * i]; var y = new float[n * o]; var dx = new float[n * i];
            for (int k = 0; k < x.Length; k++) x[k] = (float)(rng.NextDouble() - 0.5);
            double Time(ILinear l, PeftSharp.Compute.ComputeContext ctx)
            {
                using var pass = new PassContext(ctx, AdapterRouting.None) { Training = true };
                var times = new List<double>();
                for (int r = 0; r <= pr.GetValue(reps); r++)
                {
                    var sw = Stopwatch.StartNew();
                    unsafe
                    {
                        fixed (float* px = x, py = y, pdx = dx)
                        {
                            l.Forward(pass, px, py, n);
                            l.Backward(pass, py, px, pdx, n);
                        }
                    }
                    if (r > 0) times.Add(sw.Elapsed.TotalMilliseconds);
                }
                return BenchUtil.Median(times);
            }
            double gflop = 4.0 * n * o * i / 1e9;
            double td = Time(dense, compute);
            Console.WriteLine(new JsonObject { ["bench"] = "qlinear", ["weight"] = "bf16", ["out"] = o, ["in"] = i, ["tokens"] = n, ["ms"] = Math.Round(td, 2), ["gflops"] = Math.Round(gflop / (td / 1000), 1) }.ToJsonString());
            // dequantization alone (the same chunks into one scratch), twice per forward + backward
            {
                var scratch = new float[256L * i];
                var times = new List<double>();
                for (int r = 0; r <= pr.GetValue(reps); r++)
                {
                    var sw = Stopwatch.StartNew();
                    for (int rep = 0; rep < 2; rep++)
                        for (int r0 = 0; r0 < o; r0 += 256) q.Weight.DequantizeRows(compute, r0, Math.Min(256, o - r0), scratch);
                    if (r > 0) times.Add(sw.Elapsed.TotalMilliseconds);
                }
                Console.WriteLine(new JsonObject { ["bench"] = "qlinear", ["weight"] = "nf4+dq", ["dequantize_only_ms"] = Math.Round(BenchUtil.Median(times), 2) }.ToJsonString());
            }
            foreach (var (c, managed) in pr.GetValue(chunks)!.Split(',').SelectMany(c => new[] { (c, false), (c, true) }))
            {
                using var chunkCompute = PeftSharp.Compute.ComputeContext.CreateCpu(compute.Options with { Quant4ChunkRows = int.Parse(c), Quant4ManagedGemm = managed });
                double tq = Time(q, chunkCompute);
                Console.WriteLine(new JsonObject { ["bench"] = "qlinear", ["weight"] = "nf4+dq", ["chunk_rows"] = chunkCompute.Options.Quant4ChunkRows, ["gemm"] = managed ? "managed" : compute.Options.Gemm.ToString(), ["out"] = o, ["in"] = i, ["tokens"] = n, ["ms"] = Math.Round(tq, 2), ["gflops"] = Math.Round(gflop / (tq / 1000), 1), ["vs_bf16"] = Math.Round(td / tq, 3) }.ToJsonString());
            }
            return 0;
        }));
        return cmd;
    }
}
