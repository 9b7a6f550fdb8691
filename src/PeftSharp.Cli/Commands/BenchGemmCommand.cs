using PeftSharp.Compute;
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftSharp.Kernels;
using PeftSharp.Tensors;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft bench gemm`: managed GEMM vs OpenBLAS on the projection shapes of the bundled model configs.
/// Convention: m is always the token count (512), (n, k) is the weight's shape [out, in]; FLOPs = 2·m·n·k for every op.
///   nt  y[m,n]  = x[m,k] · W[n,k]ᵀ   (forward)
///   nn  dx[m,k] = dy[m,n] · W[n,k]   (backward, input gradient)
///   tn  dW[n,k] = dy[m,n]ᵀ · x[m,k]  (backward, weight gradient)
/// The two backends run interleaved (alternating which goes first) so machine noise hits both alike; medians of reps
/// (the *_best fields are the fastest rep, a noise-robust view of what each can reach on this machine).
/// </summary>
internal sealed class BenchGemmCommand : IBenchCommand
{
    static readonly string[] DefaultConfigs = ["smollm2-135m", "tinyllama-1.1b"];

    public Command Build()
    {
        var threads = SharedOptions.Threads();
        var reps = new Option<int>("--reps") { Description = "timed repetitions per shape and backend (median reported)", DefaultValueFactory = _ => 5 };
        var m = new Option<int>("--m") { Description = "tokens per product (rows of x and dy)", DefaultValueFactory = _ => 512 };
        var dtype = new Option<string>("--dtype") { Description = "storage dtype of the weight W for the managed path: f32 or bf16 (OpenBLAS always multiplies f32)", DefaultValueFactory = _ => "f32" };
        var configs = new Option<string[]>("--config") { Description = "model config.json files or names under assets/model-configs (default: smollm2-135m, tinyllama-1.1b)", AllowMultipleArgumentsPerToken = true };
        var ops = new Option<string>("--ops") { Description = "comma-separated subset of nt,nn,tn", DefaultValueFactory = _ => "nt,nn,tn" };
        var shapeOpt = new Option<string[]>("--shape") { Description = "bench these weight shapes NxK instead of the configs' projections (e.g. 2048x2048)", AllowMultipleArgumentsPerToken = true };
        var noBlas = new Option<bool>("--no-openblas") { Description = "time the managed path only (openblas_gflops: null)" };
        var settle = new Option<int>("--settle-ms") { Description = "pause after each OpenBLAS run so its spinning idle threads park before the managed run", DefaultValueFactory = _ => 10 };
        var rank = new Option<int>("--lora-rank") { Description = "also bench the LoRA A/B products of q_proj at this rank (0: off)", DefaultValueFactory = _ => 16 };
        var cmd = new Command("gemm", "GEMM GFLOP/s, managed vs OpenBLAS, on the projections of SmolLM2-135M and TinyLlama-1.1B");
        foreach (var o in new Option[] { threads, reps, m, dtype, configs, shapeOpt, ops, rank, noBlas, settle }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            var wType = pr.GetValue(dtype)?.ToLowerInvariant() switch
            {
                "f32" => DType.F32,
                "bf16" => DType.BF16,
                var s => throw new PeftException($"--dtype '{s}': expected f32 or bf16"),
            };
            var opList = (pr.GetValue(ops) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var op in opList)
                if (op is not ("nt" or "nn" or "tn")) throw new PeftException($"--ops '{op}': expected nt, nn or tn");
            var names = pr.GetValue(configs) is { Length: > 0 } given ? given : DefaultConfigs;
            var shapes = pr.GetValue(shapeOpt) is { Length: > 0 } custom
                ? custom.Select(ParseShape).ToList()
                : names.SelectMany(c => ProjectionShapes(ResolveConfig(c), pr.GetValue(rank))).ToList();
            Run(compute, shapes, pr.GetValue(m), Math.Max(1, pr.GetValue(reps)), wType, opList, Gemm.OpenBlasAvailable && !pr.GetValue(noBlas), Math.Max(0, pr.GetValue(settle)));
            return 0;
        }));
        return cmd;
    }

    sealed record Shape(string Model, string Proj, int N, int K);

    static Shape ParseShape(string text)
    {
        var parts = text.ToLowerInvariant().Split('x');
        if (parts.Length == 2 && int.TryParse(parts[0], out int n) && int.TryParse(parts[1], out int k) && n > 0 && k > 0)
            return new Shape("custom", text, n, k);
        throw new PeftException($"--shape '{text}': expected NxK with positive integers, e.g. 2048x2048");
    }

    static void Run(ComputeContext compute, List<Shape> shapes, int m, int reps, DType wType, string[] ops, bool blas, int settleMs)
    {
        Console.Error.WriteLine($"gemm bench: threads={compute.Threads} simd={compute.Simd} openblas={(Gemm.OpenBlasAvailable ? Gemm.OpenBlasCoreName : "absent")}{(blas ? "" : " (not timed)")} m={m} reps={reps} weight={wType}");
            foreach (var s in shapes)
                foreach (var op in ops)
                {
                    var (managed, openblas, managedBest, openblasBest) = Measure(compute, s, op, m, reps, wType, blas, settleMs);
                    var line = new JsonObject
                    {
                        ["bench"] = "gemm", ["model"] = s.Model, ["proj"] = s.Proj,
                        ["m"] = m, ["n"] = s.N, ["k"] = s.K, ["op"] = op,
                        ["dtype"] = wType == DType.BF16 && op != "tn" ? "bf16" : "f32", ["threads"] = compute.Threads,
                        ["managed_gflops"] = Math.Round(managed, 1),
                        ["openblas_gflops"] = openblas is double o ? Math.Round(o, 1) : null,
                        ["ratio"] = openblas is double o2 ? Math.Round(managed / o2, 3) : null,
                        ["managed_best_gflops"] = Math.Round(managedBest, 1),
                        ["openblas_best_gflops"] = openblasBest is double ob ? Math.Round(ob, 1) : null,
                    };
                    Console.WriteLine(line.ToJsonString());
                }
    }

    static unsafe (double managed, double? openblas, double managedBest, double? openblasBest) Measure(ComputeContext compute, Shape s, string op, int m, int reps, DType wType, bool blas, int settleMs)
    {
        int n = s.N, k = s.K;
        var rng = new Random(1234);
        using var x = Filled(rng, (long)m * k, DType.F32);
        using var dy = Filled(rng, (long)m * n, DType.F32);
        using var w32 = Filled(rng, (long)n * k, DType.F32);
        using var wLow = wType == DType.F32 ? null : Filled(rng, (long)n * k, wType);
        using var outBuf = new NativeBuffer((long)Math.Max((long)m * Math.Max(n, k), (long)n * k) * 4);
        float* o = (float*)outBuf.Pointer;
        var xv = new MatrixView(x.Pointer, DType.F32, m, k, k);
        var dyv = new MatrixView(dy.Pointer, DType.F32, m, n, n);
        var w32v = new MatrixView(w32.Pointer, DType.F32, n, k, k);
        var wManaged = wLow is null ? w32v : new MatrixView(wLow.Pointer, wType, n, k, k);

        void Product(GemmPath path, MatrixView w)
        {
            switch (op)
            {
                case "nt": Gemm.MultiplyOn(path, compute.Threads, compute.Buffers, false, true, m, n, k, 1f, xv, w, 0f, o, n); break;     // y = x·Wᵀ
                case "nn": Gemm.MultiplyOn(path, compute.Threads, compute.Buffers, false, false, m, k, n, 1f, dyv, w, 0f, o, k); break;   // dx = dy·W
                default: Gemm.MultiplyOn(path, compute.Threads, compute.Buffers, true, false, n, k, m, 1f, dyv, xv, 0f, o, k); break;     // dW = dyᵀ·x
            }
        }
        double Time(GemmBackend backend, MatrixView w)
        {
            var path = backend == GemmBackend.OpenBlas ? GemmPath.OpenBlas : compute.ManagedPath;
            long t0 = Stopwatch.GetTimestamp();
            Product(path, w);
            return 2.0 * m * n * k / Stopwatch.GetElapsedTime(t0).TotalSeconds / 1e9;
        }

        Time(GemmBackend.Managed, wManaged);
        if (blas) { Time(GemmBackend.OpenBlas, w32v); Thread.Sleep(settleMs); }
        var managed = new List<double>();
        var openblas = new List<double>();
        // OpenBLAS's idle pthreads keep polling for a while after a call (2^THREAD_TIMEOUT cycles; PeftSharp sets 2^20
        // unless OPENBLAS_THREAD_TIMEOUT is given) and would take a core from the managed run right after; a short
        // pause lets them park first.
        for (int r = 0; r < reps; r++)
        {
            if (blas && r % 2 == 1) { openblas.Add(Time(GemmBackend.OpenBlas, w32v)); Thread.Sleep(settleMs); }
            managed.Add(Time(GemmBackend.Managed, wManaged));
            if (blas && r % 2 == 0) { openblas.Add(Time(GemmBackend.OpenBlas, w32v)); Thread.Sleep(settleMs); }
        }
        return (Median(managed), blas ? Median(openblas) : null, managed.Max(), blas ? openblas.Max() : null);
    }

    static double Median(List<double> v)
    {
        v.Sort();
        return v.Count % 2 == 1 ? v[v.Count / 2] : 0.5 * (v[v.Count / 2 - 1] + v[v.Count / 2]);
    }

    static NativeBuffer Filled(Random rng, long count, DType dtype)
    {
        var values = new float[count];
        for (long i = 0; i < count; i++) values[i] = (float)(rng.NextDouble() - 0.5);
        var buf = new NativeBuffer(count * dtype.Size());
        unsafe { DTypeConvert.FromFloat(values, dtype, buf.Pointer); }
        return buf;
    }

    // Weight shapes [out, in] of one decoder layer's projections plus the vocabulary head; equal shapes share a line.
    static IEnumerable<Shape> ProjectionShapes(string path, int rank)
    {
        JsonNode root;
        try { root = JsonNode.Parse(File.ReadAllText(path)) ?? throw new PeftException($"{path}: empty config"); }
        catch (JsonException e) { throw new PeftException($"{path}: not valid JSON ({e.Message})"); }
        int Get(string key) => root[key]?.GetValue<int>() ?? throw new PeftException($"{path}: missing integer key '{key}'");
        string model = Path.GetFileNameWithoutExtension(path);
        int hidden = Get("hidden_size"), inter = Get("intermediate_size"), heads = Get("num_attention_heads");
        int kvHeads = root["num_key_value_heads"]?.GetValue<int>() ?? heads;
        int headDim = root["head_dim"]?.GetValue<int>() ?? hidden / heads;
        var all = new (string proj, int n, int k)[]
        {
            ("q_proj", heads * headDim, hidden), ("k_proj", kvHeads * headDim, hidden), ("v_proj", kvHeads * headDim, hidden),
            ("o_proj", hidden, heads * headDim), ("gate_proj", inter, hidden), ("up_proj", inter, hidden),
            ("down_proj", hidden, inter), ("lm_head", Get("vocab_size"), hidden),
        };
        foreach (var g in all.GroupBy(p => (p.n, p.k)))
            yield return new Shape(model, string.Join(",", g.Select(p => p.proj)), g.Key.n, g.Key.k);
        if (rank > 0)
        {
            yield return new Shape(model, $"lora_A(q_proj,r={rank})", rank, hidden);
            yield return new Shape(model, $"lora_B(q_proj,r={rank})", heads * headDim, rank);
        }
    }

    // A path to a config.json, or a name looked up in assets/model-configs from the working directory or the install upward.
    internal static string ResolveConfig(string nameOrPath)
    {
        if (File.Exists(nameOrPath)) return nameOrPath;
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "assets", "model-configs", nameOrPath + ".json");
                if (File.Exists(candidate)) return candidate;
            }
        throw new PeftException($"model config '{nameOrPath}': not a file and not found as assets/model-configs/{nameOrPath}.json above the working directory");
    }
}
