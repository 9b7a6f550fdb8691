using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftSharp.Models;

namespace PeftSharp.Planning;

/// <summary>What `peft calc` asks for.</summary>
internal sealed record CalcRequest
{
    public IReadOnlyList<int> Ranks { get; init; } = [8, 16, 64];
    /// <summary>Target sets to count, each "all-linear" or a comma list.</summary>
    public IReadOnlyList<string> TargetSets { get; init; } = ["q_proj,v_proj", "all-linear"];
    /// <summary>Rank and targets of the memory estimates and the advice.</summary>
    public int MemoryRank { get; init; } = 16;
    public string MemoryTargets { get; init; } = "all-linear";
    public int Batch { get; init; } = 4;
    public int Seq { get; init; } = 256;
    public string Optimizer { get; init; } = "adamw";
    public long? BudgetBytes { get; init; }
    /// <summary>Optimizer steps the time estimate adds up (per method).</summary>
    public int Steps { get; init; } = 1000;
    /// <summary>modules_to_save to count (embed_tokens, lm_head), and whether ensure_weight_tying keeps a tie.</summary>
    public IReadOnlyList<string> ModulesToSave { get; init; } = [];
    public bool EnsureWeightTying { get; init; }
}

/// <summary>`peft calc` on a real config: exact adapter counts, memory estimates per method, and (with a budget) advice.</summary>
internal sealed class CalcReport
{
    public ModelConfig Config { get; }
    public string Source { get; }
    public CalcRequest Request { get; }
    public ParameterCounter.Breakdown Parameters { get; }
    public IReadOnlyList<MemoryEstimate> Memory { get; }
    public Advice? Advice { get; }
    /// <summary>The probe the time estimates come from (null: no time estimate).</summary>
    public MachineThroughput? Throughput { get; }
    public IReadOnlyList<TimeEstimate> Time { get; } = [];
    /// <summary>What the requested modules_to_save add (null: none requested).</summary>
    public ModulesToSaveCount? ModulesToSave { get; }
    /// <summary>A GPTQ/AWQ checkpoint's packing (null: a dense or bitsandbytes config): the memory rows are lora and
    /// dora over the packed projections.</summary>
    public Quantization.IntGroup.IntGroupConfig? PackedBase { get; }

    /// <summary>A fused-projection model (phi3) has no q_proj/v_proj: its attention-only row is qkv_proj, the module PEFT
    /// users target there.</summary>
    static CalcRequest ForArchitecture(CalcRequest request, ModelConfig config)
    {
        if (!config.FusedProjections) return request;
        static string Map(string set) => set.Replace(" ", "") == "q_proj,v_proj" ? "qkv_proj" : set;
        return request with { TargetSets = request.TargetSets.Select(Map).ToArray(), MemoryTargets = Map(request.MemoryTargets) };
    }

    public CalcReport(ModelConfig config, string source, CalcRequest request, MachineThroughput? throughput = null,
        Quantization.IntGroup.IntGroupConfig? packedBase = null)
    {
        foreach (var r in request.Ranks.Append(request.MemoryRank))
            if (r <= 0) throw new PeftException($"--ranks: rank must be > 0, got {r}");
        request = ForArchitecture(request, config);
        foreach (var t in request.TargetSets.Append(request.MemoryTargets)) ParameterCounter.ParseTargets(t, config);
        Config = config; Source = source; Request = request;
        Parameters = ParameterCounter.Count(config);
        if (request.ModulesToSave.Count > 0) ModulesToSave = ModulesToSaveCount.Of(config, request.ModulesToSave, request.EnsureWeightTying);
        PackedBase = packedBase;
        string[] methods = packedBase != null ? ["lora", "dora"] : MemoryEstimator.Methods;
        Memory = methods.SelectMany(m => new[] { false, true }.Select(ck =>
            MemoryEstimator.Estimate(config, m, request.Batch, request.Seq, request.MemoryRank, request.MemoryTargets, ck, request.Optimizer, packedBase, ModulesToSave))).ToList();
        if (throughput != null)
        {
            if (request.Steps <= 0) throw new PeftException($"--steps: must be > 0, got {request.Steps}");
            Throughput = throughput;
            // a packed base costs what a 4-bit one does per step: a dequantization of every projection per product
            Time = (packedBase != null ? new[] { "qlora", "qdora" } : MemoryEstimator.Methods).SelectMany(m => new[] { false, true }.Select(ck =>
                TimeEstimator.Estimate(config, m, request.Batch, request.Seq, request.MemoryRank, request.MemoryTargets, ck, throughput))).ToList();
        }
        if (request.BudgetBytes is long budget && packedBase == null)
            Advice = MethodAdvisor.Advise(config, budget, request.Batch, request.Seq, request.MemoryRank, request.MemoryTargets, request.Optimizer, ModulesToSave);
    }

    static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
    string Pct(long part) => SquareModel.FormatPercent(100.0 * part / Parameters.Total);
    static string Mb(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture);

    /// <summary>The generation KV cache (float32) of one sequence at the full context; a sliding-window layer keeps
    /// only its window (<see cref="Models.KvCacheAttention.BytesFor"/>).</summary>
    static string KvCacheLine(ModelConfig c)
    {
        long kept = Models.KvCacheAttention.BytesFor(c, c.MaxPositions);
        long all = 2L * c.NumLayers * c.NumKvHeads * c.HeadDim * sizeof(float) * c.MaxPositions;
        return $"generation KV cache (float32, one sequence of {N(c.MaxPositions)} tokens): {Mb(kept)} MiB" +
               (kept < all ? $" (sliding-window layers keep only their window; {Mb(all)} MiB if every layer kept every position)" : "");
    }

    public string ToText()
    {
        var c = Config;
        var p = Parameters;
        var sb = new StringBuilder();
        sb.AppendLine($"{Source}: {c.ModelType}, {c.NumLayers} layers, hidden {c.HiddenSize}, intermediate {c.IntermediateSize}, " +
                      $"heads {c.NumHeads} (kv {c.NumKvHeads}, head_dim {c.HeadDim}), vocab {c.VocabSize}, {(c.TieWordEmbeddings ? "tied" : "untied")} embeddings, {c.TorchDtype}");
        sb.AppendLine($"parameters: {N(p.Total)} = embedding {N(p.Embedding)}{(p.LmHead > 0 ? $" + lm_head {N(p.LmHead)}" : " (tied lm_head)")} + projections {N(p.Projections)} + norms {N(p.Norms)}{(p.Biases > 0 ? $" + biases {N(p.Biases)}" : "")}");
        sb.AppendLine(KvCacheLine(c));
        if (PackedBase is { } pb)
        {
            var shapes = ParameterCounter.Projections(c).ToList();
            double weights = shapes.Sum(m => (double)m.WeightParameters);
            double fileBits = 8 * shapes.Sum(m => (double)pb.CheckpointBytes(m.Out, m.In)) / weights;
            double memBits = 8 * shapes.Sum(m => (double)pb.MemoryBytes(m.Out, m.In)) / weights;
            sb.AppendLine($"base: {pb} — projections {fileBits.ToString("0.###", CultureInfo.InvariantCulture)} bits/parameter in the checkpoint, " +
                          $"{memBits.ToString("0.###", CultureInfo.InvariantCulture)} loaded (float32 zeros and scales); the memory rows train lora/dora over it" +
                          (Request.BudgetBytes != null ? "; no budget advice for a packed base" : ""));
        }
        sb.AppendLine();

        sb.AppendLine($"Adapter parameters per target module, all {c.NumLayers} layers (exact; LoRA = r·(in+out), DoRA adds m = out)");
        var mt = new TextTable("  ", ["module", "shape [out,in]", .. Request.Ranks.Select(r => $"LoRA r={r}"), "DoRA +m"]);
        foreach (var m in ParameterCounter.Projections(c))
            mt.Add([m.Name, $"{m.Out}×{m.In}", .. Request.Ranks.Select(r => N(c.NumLayers * m.LoraParameters(r))), N((long)c.NumLayers * m.DoraExtra)]);
        sb.AppendLine(mt.ToString());
        sb.AppendLine();

        sb.AppendLine($"Trainable parameters by targets and rank (% of the {N(p.Total)} model parameters)");
        var tt = new TextTable("  ", "targets", "r", "LoRA", "% model", "DoRA", "% model");
        foreach (var set in Request.TargetSets)
            foreach (var r in Request.Ranks)
            {
                var names = ParameterCounter.ParseTargets(set, c);
                long lora = ParameterCounter.AdapterParameters(c, names, r, false), dora = ParameterCounter.AdapterParameters(c, names, r, true);
                tt.Add(set, r, N(lora), Pct(lora), N(dora), Pct(dora));
            }
        sb.AppendLine(tt.ToString());
        if (ModulesToSave is { } mts) sb.AppendLine(mts.Describe());
        sb.AppendLine();

        var q = Request;
        sb.AppendLine($"Memory ESTIMATE for training (MiB; not a measurement): batch {q.Batch} × seq {q.Seq}, r {q.MemoryRank}, {q.MemoryTargets}, {q.Optimizer}" +
                      (ModulesToSave is { } saved ? $", modules_to_save {string.Join(",", saved.Modules)} (in the trainable, gradient and optimizer columns)" : ""));
        sb.AppendLine("  weights: frozen base (NF4 projections for q-methods) | trainable: float32 values | optimizer: AdamW state |");
        sb.AppendLine($"  activations: saved for backward | overhead: runtime {Mb(MemoryEstimator.RuntimeBaselineBytes)} MiB + scratch");
        var memt = new TextTable("  ", "method", "ckpt", "trainable params", "weights", "trainable", "grads", "optimizer", "activations", "overhead", "total");
        foreach (var e in Memory)
            memt.Add(e.Method, e.GradientCheckpointing ? "on" : "off", N(e.TrainableParameters), Mb(e.WeightsBytes), Mb(e.AdapterBytes),
                Mb(e.GradientBytes), Mb(e.OptimizerBytes), Mb(e.ActivationBytes), Mb(e.OverheadBytes), Mb(e.TotalBytes));
        sb.AppendLine(memt.ToString());

        if (Throughput is { } tp)
        {
            sb.AppendLine();
            sb.AppendLine($"Time ESTIMATE per optimizer step (an estimate, not a measurement of training): batch {q.Batch} × seq {q.Seq}, r {q.MemoryRank}, {q.MemoryTargets}");
            sb.AppendLine($"  from a {tp.ProbeSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s probe of this machine: {tp.Description}");
            sb.AppendLine("  every FLOP is charged at the probe's GEMM rate, so real steps take longer (attention softmax, norms and DoRA's");
            sb.AppendLine("  elementwise work run slower than a GEMM; on small models much longer); measure with `peft bench train`");
            if (PackedBase != null) sb.AppendLine("  packed base: lora/dora over it cost what qlora/qdora do (every projection dequantized per product), listed under those names");
            var tt2 = new TextTable("  ", "method", "ckpt", "GFLOP/step", "dequantized", "est. s/step", "est. tokens/s", $"est. {N(q.Steps)} steps");
            foreach (var e in Time)
                tt2.Add(e.Method, e.GradientCheckpointing ? "on" : "off", (e.Flops / 1e9).ToString("0.0", CultureInfo.InvariantCulture),
                    e.DequantizedWeights == 0 ? "-" : $"{(e.DequantizedWeights / 1e6).ToString("0", CultureInfo.InvariantCulture)} M",
                    e.SecondsPerStep.ToString(e.SecondsPerStep < 10 ? "0.000" : "0.0", CultureInfo.InvariantCulture),
                    e.TokensPerSecond.ToString("0", CultureInfo.InvariantCulture), Duration(e.SecondsPerStep * q.Steps));
            sb.AppendLine(tt2.ToString());
        }

        if (Advice is { } a)
        {
            sb.AppendLine();
            sb.AppendLine($"Budget {ByteSize.Format(a.BudgetBytes)} ({N(a.BudgetBytes)} bytes): which methods fit (estimates; grid batch {string.Join(",", MethodAdvisor.BatchGrid)} × seq {string.Join(",", MethodAdvisor.SeqsFor(c))})");
            var ft = new TextTable("  ", "method", "ckpt", $"at {a.Batch}×{a.Seq} MiB", "fits", $"max batch @ seq {a.Seq}", "largest batch×seq", "its MiB");
            foreach (var f in a.Fits)
                ft.Add(f.Method, f.Checkpointing ? "on" : "off", Mb(f.AtRequested.TotalBytes), f.FitsRequested ? "yes" : "no",
                    f.MaxBatchAtRequestedSeq == 0 ? "-" : f.MaxBatchAtRequestedSeq.ToString(CultureInfo.InvariantCulture),
                    f.LargestFitting is { } l ? $"{l.Batch}×{l.Seq}" : "-", f.LargestFitting is { } l2 ? Mb(l2.TotalBytes) : "-");
            sb.AppendLine(ft.ToString());
            sb.AppendLine(a.Method == null
                ? $"recommendation: none — {a.Reason}"
                : $"recommendation: {a.Method}{(a.Checkpointing ? " with gradient checkpointing" : "")} at batch {a.AdvisedBatch} × seq {a.AdvisedSeq} — {a.Reason}");
        }
        return sb.ToString().TrimEnd();
    }

    /// <summary>"42 s", "3 min 5 s", "2 h 10 min".</summary>
    public static string Duration(double seconds) => seconds switch
    {
        < 60 => seconds.ToString("0", CultureInfo.InvariantCulture) + " s",
        < 3600 => $"{(int)(seconds / 60)} min {(int)(seconds % 60)} s",
        _ => $"{(int)(seconds / 3600)} h {(int)(seconds % 3600 / 60)} min",
    };

    static JsonObject EstimateJson(MemoryEstimate e) => new()
    {
        ["method"] = e.Method, ["gradient_checkpointing"] = e.GradientCheckpointing, ["batch"] = e.Batch, ["seq"] = e.Seq,
        ["rank"] = e.Rank, ["targets"] = e.Targets, ["optimizer"] = e.Optimizer, ["trainable_parameters"] = e.TrainableParameters,
        ["weights_bytes"] = e.WeightsBytes, ["adapter_bytes"] = e.AdapterBytes, ["gradient_bytes"] = e.GradientBytes,
        ["optimizer_bytes"] = e.OptimizerBytes, ["activation_bytes"] = e.ActivationBytes, ["overhead_bytes"] = e.OverheadBytes,
        ["scratch_bytes"] = e.ScratchBytes, ["total_bytes"] = e.TotalBytes,
    };

    public string ToJson()
    {
        var c = Config;
        var p = Parameters;
        var o = new JsonObject
        {
            ["source"] = Source,
            ["model_type"] = c.ModelType,
            ["parameters"] = new JsonObject
            {
                ["total"] = p.Total, ["embedding"] = p.Embedding, ["lm_head"] = p.LmHead, ["projections"] = p.Projections,
                ["norms"] = p.Norms, ["biases"] = p.Biases,
            },
            ["modules"] = new JsonArray(ParameterCounter.Projections(c).Select(m => (JsonNode)new JsonObject
            {
                ["name"] = m.Name, ["out"] = m.Out, ["in"] = m.In, ["layers"] = c.NumLayers,
                ["lora_per_rank"] = new JsonObject(Request.Ranks.Select(r => KeyValuePair.Create($"{r}", (JsonNode?)(c.NumLayers * m.LoraParameters(r))))),
                ["dora_extra"] = (long)c.NumLayers * m.DoraExtra,
            }).ToArray()),
            ["adapters"] = new JsonArray(Request.TargetSets.SelectMany(set => Request.Ranks.Select(r =>
            {
                var names = ParameterCounter.ParseTargets(set, c);
                long lora = ParameterCounter.AdapterParameters(c, names, r, false), dora = ParameterCounter.AdapterParameters(c, names, r, true);
                return (JsonNode)new JsonObject
                {
                    ["targets"] = set, ["rank"] = r, ["lora"] = lora, ["lora_percent"] = 100.0 * lora / p.Total,
                    ["dora"] = dora, ["dora_percent"] = 100.0 * dora / p.Total,
                };
            })).ToArray()),
            ["memory_estimates"] = new JsonArray(Memory.Select(e => (JsonNode)EstimateJson(e)).ToArray()),
            ["modules_to_save"] = ModulesToSave is not { } m2 ? null : new JsonObject
            {
                ["modules"] = new JsonArray(m2.Modules.Select(x => (JsonNode?)x).ToArray()), ["copies"] = m2.Copies,
                ["trainable_parameters"] = m2.TrainableParameters, ["tied_model"] = m2.TiedModel, ["tie_kept"] = m2.TieKept,
            },
            ["runtime_baseline_bytes"] = MemoryEstimator.RuntimeBaselineBytes,
        };
        if (PackedBase is { } pb)
        {
            var shapes = ParameterCounter.Projections(c).ToList();
            double weights = shapes.Sum(m => (double)m.WeightParameters);
            o["packed_base"] = new JsonObject
            {
                ["method"] = pb.Method, ["bits"] = pb.Bits, ["group_size"] = pb.GroupSize, ["desc_act"] = pb.DescAct, ["sym"] = pb.Sym,
                ["checkpoint_format"] = pb.FormatName,
                ["checkpoint_bits_per_parameter"] = 8 * shapes.Sum(m => (double)pb.CheckpointBytes(m.Out, m.In)) / weights,
                ["loaded_bits_per_parameter"] = 8 * shapes.Sum(m => (double)pb.MemoryBytes(m.Out, m.In)) / weights,
            };
        }
        if (Throughput is { } tp)
            o["time_estimates"] = new JsonObject
            {
                ["note"] = "estimate: every FLOP charged at the probe's GEMM rate; real steps take longer",
                ["probe"] = new JsonObject
                {
                    ["gemm_flops_per_second"] = tp.GemmFlopsPerSecond, ["dequant_weights_per_second"] = tp.DequantWeightsPerSecond,
                    ["description"] = tp.Description, ["probe_seconds"] = tp.ProbeSeconds,
                },
                ["steps"] = Request.Steps,
                ["methods"] = new JsonArray(Time.Select(e => (JsonNode)new JsonObject
                {
                    ["method"] = e.Method, ["gradient_checkpointing"] = e.GradientCheckpointing, ["batch"] = e.Batch, ["seq"] = e.Seq,
                    ["flops_per_step"] = e.Flops, ["dequantized_weights_per_step"] = e.DequantizedWeights,
                    ["seconds_per_step"] = e.SecondsPerStep, ["tokens_per_second"] = e.TokensPerSecond,
                    ["seconds_for_steps"] = e.SecondsPerStep * Request.Steps,
                }).ToArray()),
            };
        if (Advice is { } a)
        {
            o["advice"] = new JsonObject
            {
                ["budget_bytes"] = a.BudgetBytes,
                ["fits"] = new JsonArray(a.Fits.Select(f => (JsonNode)new JsonObject
                {
                    ["method"] = f.Method, ["gradient_checkpointing"] = f.Checkpointing, ["total_bytes_at_requested"] = f.AtRequested.TotalBytes,
                    ["fits_requested"] = f.FitsRequested, ["max_batch_at_requested_seq"] = f.MaxBatchAtRequestedSeq,
                    ["largest_fitting"] = f.LargestFitting is { } l ? new JsonObject { ["batch"] = l.Batch, ["seq"] = l.Seq, ["total_bytes"] = l.TotalBytes } : null,
                }).ToArray()),
                ["method"] = a.Method, ["gradient_checkpointing"] = a.Checkpointing, ["batch"] = a.AdvisedBatch, ["seq"] = a.AdvisedSeq,
                ["reason"] = a.Reason,
            };
        }
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>The seed-004 tables: one row per (parameter count, rank).</summary>
    public static IReadOnlyList<SquareModel.Row> SquareRows(IReadOnlyList<long> totals, IReadOnlyList<int> ranks) =>
        totals.SelectMany(t => ranks.Select(r => SquareModel.Compute(t, r))).ToList();

    /// <summary>
    /// Seed 004's layout: one rank and several sizes → "Total Parameters | D | LoRA | %"; one size and several ranks →
    /// "Rank | D | LoRA | %" (one table per size).
    /// </summary>
    public static string SquareText(IReadOnlyList<long> totals, IReadOnlyList<int> ranks)
    {
        var sb = new StringBuilder();
        sb.AppendLine("Square-matrix illustration (seed 004): the model as one D×D matrix, D = ⌈√params⌉, LoRA = 2·D·r. Not a real model's count.");
        if (ranks.Count == 1)
        {
            sb.AppendLine($"rank = {ranks[0]}");
            var t = new TextTable(" | ", "Total Parameters", "Matrix Dimension (D)", "LoRA Parameters", "Percentage");
            foreach (var r in SquareRows(totals, ranks)) t.Add(SquareModel.FormatCount(r.TotalParameters), r.Dimension, r.LoraParameters, r.PercentText);
            sb.AppendLine(t.ToString());
        }
        else
        {
            foreach (var total in totals)
            {
                sb.AppendLine($"{SquareModel.FormatCount(total)} model with different ranks");
                var t = new TextTable(" | ", "Rank", "Matrix Dimension (D)", "LoRA Parameters", "Percentage");
                foreach (var r in SquareRows([total], ranks)) t.Add(r.Rank, r.Dimension, r.LoraParameters, r.PercentText);
                sb.AppendLine(t.ToString());
            }
        }
        return sb.ToString().TrimEnd();
    }

    public static string SquareJson(IReadOnlyList<long> totals, IReadOnlyList<int> ranks) =>
        new JsonObject
        {
            ["square"] = new JsonArray(SquareRows(totals, ranks).Select(r => (JsonNode)new JsonObject
            {
                ["total_parameters"] = r.TotalParameters, ["rank"] = r.Rank, ["dimension"] = r.Dimension,
                ["lora_parameters"] = r.LoraParameters, ["percent"] = r.Percent, ["percent_text"] = r.PercentText,
            }).ToArray()),
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
