using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftSharp.Cli.Training;
using PeftSharp.Compute;
using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;
using PeftSharp.Quantization;
using PeftSharp.Tensors;
using PeftSharp.Training;

namespace PeftSharp.Cli.Commands;

/// <summary>
/// `peft bench loftq`: how much closer LoftQ's Q + s·B·A comes to W than plain NF4's Q, per projection and in total,
/// after each of 1 … --iters steps (step k's state is exactly what loftq_iter = k returns), on a real model (default:
/// the embedded demo model) and on random TinyLlama-shaped layers. One JSON object per model on stdout.
/// </summary>
internal sealed class BenchLoftQCommand : IBenchCommand
{
    public Command Build()
    {
        var model = new Option<string?>("--model") { Description = "dense Hugging Face model folder (default: the embedded demo model; 'none' skips it)" };
        var randomConfig = new Option<string>("--random-config") { Description = "config.json or name under assets/model-configs for the random layers", DefaultValueFactory = _ => "tinyllama-1.1b" };
        var layers = new Option<int>("--random-layers") { Description = "random layers of --random-config (0 skips them)", DefaultValueFactory = _ => 1 };
        var iters = new Option<int>("--iters") { Description = "LoftQ steps (the errors after each are reported)", DefaultValueFactory = _ => 5 };
        var rank = new Option<int>("--r") { Description = "LoRA rank", DefaultValueFactory = _ => 16 };
        var alpha = new Option<double>("--lora-alpha") { Description = "LoRA alpha (the errors do not depend on it: S/s goes under the roots)", DefaultValueFactory = _ => 32 };
        var doubleQuant = new Option<bool>("--double-quant") { Description = "NF4 with double quantization (QLoRA's default; PEFT's own LoftQ uses none)", DefaultValueFactory = _ => true };
        var svd = new Option<string>("--svd") { Description = "top-r SVD: krylov (block Lanczos to a tolerance, the default) or exact (full Gram eigen-decomposition, the reference)", DefaultValueFactory = _ => "krylov" };
        var threads = SharedOptions.Threads();
        var cmd = new Command("loftq", "LoftQ vs plain NF4: relative error ‖W − (Q + s·B·A)‖/‖W‖ against ‖W − Q‖/‖W‖ per module and in total, after 1 … --iters steps, and the SVD time per module");
        foreach (var o in new Option[] { model, randomConfig, layers, iters, rank, alpha, doubleQuant, svd, threads }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            using var compute = SharedOptions.Compute(pr.GetValue(threads));
            int steps = pr.GetValue(iters), r = pr.GetValue(rank);
            if (steps < 1) throw new PeftException($"--iters must be ≥ 1, got {steps}");
            if (r < 1) throw new PeftException($"--r must be ≥ 1, got {r}");
            var method = pr.GetValue(svd) switch
            {
                "krylov" => LoftQSvd.Krylov,
                "exact" => LoftQSvd.Exact,
                var other => throw new PeftException($"--svd must be krylov or exact, got '{other}'"),
            };
            var format = new QuantizeOptions(Quant4Type.NF4, pr.GetValue(doubleQuant), 64);
            float scaling = (float)(pr.GetValue(alpha) / r);
            string? dir = pr.GetValue(model);
            if (dir != "none")
            {
                dir ??= DefaultAssets.Model;
                using var m = CausalLM.Load(dir, null, compute);
                Print(compute, Path.GetFileName(Path.TrimEndingDirectorySeparator(dir)), m, r, scaling, steps, format, method);
            }
            if (pr.GetValue(layers) > 0)
            {
                string cfgPath = BenchGemmCommand.ResolveConfig(pr.GetValue(randomConfig)!);
                var cfg = ModelConfig.Load(cfgPath) with { NumLayers = pr.GetValue(layers) };
                using var m = CausalLM.CreateRandom(cfg, DType.BF16, 1234);
                Print(compute, $"random {Path.GetFileNameWithoutExtension(cfgPath)} ({cfg.NumLayers} layer{(cfg.NumLayers == 1 ? "" : "s")}, " +
                    "BF16 N(0, 0.02), o_proj and down_proj N(0, 0.02/√(2·layers)))", m, r, scaling, steps, format, method);
            }
            return 0;
        }));
        return cmd;
    }

    static void Print(ComputeContext compute, string label, CausalLM m, int r, float scaling, int steps, QuantizeOptions format, LoftQSvd method)
    {
        var sw = Stopwatch.StartNew();
        var reports = new List<LoftQModuleReport>();
        var svdSeconds = new JsonArray();
        double svdTotal = 0;
        foreach (var lin in m.Layers.SelectMany(l => l.Projections).Select(CausalLM.BaseProjection).OfType<Linear>())
        {
            var w = new float[lin.OutFeatures * lin.InFeatures];
            lin.ReadRows(compute, 0, lin.OutFeatures, w);
            var res = LoftQ.Run(compute, w, lin.OutFeatures, lin.InFeatures, r, scaling, steps, format, lin.Name + ".weight", method);
            res.Q.Dispose();
            reports.Add(new LoftQModuleReport(lin.Name, lin.OutFeatures, lin.InFeatures, res.PlainError, res.Errors, res.WeightNorm));
            svdSeconds.Add(Math.Round(res.SvdSeconds, 2));
            svdTotal += res.SvdSeconds;
            string basis = res.Krylov.All(k => k != null) ? $", Krylov basis {string.Join("/", res.Krylov.Select(k => k!.Basis))}, max residual {res.Krylov.Max(k => k!.MaxRelativeResidual):E1}" : "";
            Console.Error.WriteLine($"{lin.Name} [{lin.OutFeatures}×{lin.InFeatures}]: NF4 {res.PlainError:F5}, LoftQ {string.Join(" ", res.Errors.Select(e => e.ToString("F5")))}; " +
                $"SVD {res.SvdSeconds:F2} s{basis} ({sw.Elapsed.TotalSeconds:F0} s)");
        }
        var o = LoftQRunFiles.ReportJson(reports, new LoftQConfig { LoftqIter = steps });
        var result = new JsonObject
        {
            ["bench"] = "loftq",
            ["model"] = label,
            ["r"] = r,
            ["quantization"] = format.ToString(),
            ["iters"] = steps,
            ["threads"] = compute.Threads,
            ["compute"] = compute.Describe(),
            ["svd"] = method == LoftQSvd.Exact ? "exact" : $"krylov, tolerance {TruncatedSvd.KrylovTolerance:G}",
            ["seconds"] = Math.Round(sw.Elapsed.TotalSeconds, 1),
            ["svd_seconds"] = Math.Round(svdTotal, 1),
            ["total"] = o["total"]!.DeepClone(),
            ["modules"] = o["modules"]!.DeepClone(),
        };
        // Each module's SVD time (all steps), beside its errors.
        var mods = result["modules"]!.AsArray();
        for (int i = 0; i < mods.Count; i++) mods[i]!["svd_seconds"] = svdSeconds[i]!.DeepClone();
        Console.WriteLine(result.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
    }
}
