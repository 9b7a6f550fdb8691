using PeftSharp.Models;

namespace PeftSharp.Planning;

/// <summary>
/// Estimates the memory of training a model with PeftSharp, term by term, from the memory layout of this code base:
/// <list type="bullet">
/// <item>Frozen weights stay in their storage dtype (config torch_dtype: bfloat16/float16 = 2 B, float32 = 4 B); q-methods
/// keep projections as NF4 with double quantization (blocks of 64, 8-bit absmax codes, float32 nested absmax per 256
/// blocks ≈ 4.127 bits/param) while embeddings, lm_head and norms stay in storage dtype. Every RMSNorm weight is also
/// held as a float32 <c>Parameter</c> with a gradient buffer (8 B/param), biases as float32.</item>
/// <item>Trainable values and their gradients are float32 (4 + 4 B); AdamW keeps m and v in float32 (8 B), AdamW8bit
/// keeps 8-bit codes (2 B) + one float32 absmax per 256 per state, float32 states for tensors under 4096 elements.</item>
/// <item>Full fine-tuning: every weight becomes a float32 parameter (4 + 4 + 8 B/param) and the storage-dtype original
/// stays owned (or mapped) beside it.</item>
/// <item>Activations (float32) as <see cref="ModelPass"/> allocates them for N = batch·seq tokens: L+1 residual streams,
/// one <see cref="BlockActivations"/> per layer (one shared with gradient checkpointing), one <see cref="BlockGradients"/>,
/// two (N,C) gradient buffers and the final norm; every adapter module saves its x·Aᵀ (N·r) in the pass, DoRA also its
/// pre-scaling output (N·out) and factor — every layer's, or one layer's with checkpointing. Cross-entropy is chunked: no (N,V) logits.</item>
/// <item>Overhead: <see cref="RuntimeBaselineBytes"/> (measured) + shape-dependent scratch.</item>
/// </list>
/// </summary>
internal static class MemoryEstimator
{
    public static readonly string[] Methods = ["full", "lora", "dora", "qlora", "qdora"];
    public static readonly string[] Optimizers = ["adamw", "adamw8bit"];

    /// <summary>
    /// Memory of the process beyond its tensors: .NET runtime, loaded assemblies, JIT'd code, GC heap slack, thread
    /// stacks, GEMM packing and attention tile buffers per thread. Measured on this machine (.NET 10, 2 threads):
    /// an idle `peft version` peaks at 31 MiB RSS (/usr/bin/time -v); training runs of the SmolLM2-135M shape
    /// (tests/fixtures/bench/measure-train-rss.sh, LoRA and full fine-tuning) peak 66–75 MiB above the tensors this
    /// estimator accounts for. 72 MiB, a little above their mean, so "fits" errs on the safe side.
    /// </summary>
    public const long RuntimeBaselineBytes = 72L << 20;

    /// <summary>bitsandbytes' default 4-bit block size (and what our QLoRA uses).</summary>
    public const int Nf4BlockSize = 64;
    const int NestedBlockSize = 256;
    const int MinSize8Bit = 4096, Block8Bit = 256;

    /// <summary>The estimate for one method; with a GPTQ/AWQ checkpoint's packing (<c>packedBase</c>) the projections
    /// stay packed whatever the method (lora/dora train over them; full fine-tuning is refused).</summary>
    /// <remarks><paramref name="modulesToSave"/>: embedding/lm_head copies trained in full beside the adapter (their
    /// float32 values, gradients and optimizer state; full fine-tuning already trains every weight).</remarks>
    public static MemoryEstimate Estimate(ModelConfig c, string method, int batch, int seq, int rank, string targets,
        bool gradientCheckpointing, string optimizer, Quantization.IntGroup.IntGroupConfig? packedBase = null,
        ModulesToSaveCount? modulesToSave = null)
    {
        var parsed = Training.TrainingMethod.Parse(method);
        if (!Optimizers.Contains(optimizer)) throw new PeftException($"optimizer \"{optimizer}\" is not one of {string.Join(", ", Optimizers)}");
        if (batch <= 0) throw new PeftException($"--batch: must be > 0, got {batch}");
        if (seq <= 0) throw new PeftException($"--seq: must be > 0, got {seq}");
        if (rank <= 0) throw new PeftException($"--rank: must be > 0, got {rank}");
        var targetList = ParameterCounter.ParseTargets(targets, c);
        bool full = parsed.IsFull, dora = parsed.Adapter == Peft.AdapterKind.Dora, quantized = parsed.QuantizedBase || packedBase != null;
        if (full && packedBase != null) throw new PeftException($"full fine-tuning needs a dense base; this is a {packedBase.Method.ToUpperInvariant()} checkpoint");
        long n = (long)batch * seq;
        int b = StorageBytes(c);
        var count = ParameterCounter.Count(c);

        // Norms: storage original + float32 value + float32 gradient; biases: a float32 copy unless stored as float32.
        long normAndBiasCopies = count.Norms * 8 + (b == 4 ? 0 : count.Biases * 4);
        long weights, trainableCount;
        IEnumerable<long> trainableTensors;
        if (full)
        {
            weights = count.Total * b;
            trainableCount = count.Total;
            trainableTensors = ParameterCounter.WeightTensorSizes(c);
        }
        else
        {
            long projections = packedBase != null
                ? c.NumLayers * ParameterCounter.Projections(c).Sum(p => packedBase.MemoryBytes(p.Out, p.In))
                : quantized
                ? c.NumLayers * ParameterCounter.Projections(c).Sum(p => Nf4Bytes(p.WeightParameters))
                : count.Projections * b;
            weights = (count.Embedding + count.LmHead) * b + projections + (count.Norms + count.Biases) * b + normAndBiasCopies;
            trainableCount = ParameterCounter.AdapterParameters(c, targetList, rank, dora);
            trainableTensors = ParameterCounter.AdapterTensorSizes(c, targetList, rank, dora);
            if (modulesToSave is { Copies: > 0 } mts)
            {
                trainableCount += mts.TrainableParameters;
                trainableTensors = trainableTensors.Concat(Enumerable.Repeat((long)c.VocabSize * c.HiddenSize, mts.Copies));
            }
        }

        long activations = ModelPassActivationBytes(c, batch, seq, gradientCheckpointing)
            + (full ? 0 : AdapterSavedBytes(c, n, rank, targetList, dora, gradientCheckpointing));
        long scratch = ScratchBytes(c, n, rank, targetList, full, dora, quantized, gradientCheckpointing);
        return new MemoryEstimate
        {
            Method = method, Batch = batch, Seq = seq, Rank = rank, Targets = targets, GradientCheckpointing = gradientCheckpointing,
            Optimizer = optimizer, TrainableParameters = trainableCount,
            WeightsBytes = weights,
            AdapterBytes = trainableCount * 4,
            GradientBytes = trainableCount * 4,
            OptimizerBytes = OptimizerStateBytes(trainableTensors, optimizer),
            ActivationBytes = activations,
            ScratchBytes = scratch,
            OverheadBytes = RuntimeBaselineBytes + scratch,
        };
    }

    /// <summary>Bytes per frozen parameter for the config's torch_dtype.</summary>
    public static int StorageBytes(ModelConfig c) => c.TorchDtype switch
    {
        "float32" => 4,
        _ => 2,   // bfloat16, float16
    };

    /// <summary>NF4/FP4 with double quantization: packed codes, 8-bit absmax codes, float32 nested absmax and offset.</summary>
    public static long Nf4Bytes(long elements, int blockSize = Nf4BlockSize)
    {
        long blocks = (elements + blockSize - 1) / blockSize;
        long nested = (blocks + NestedBlockSize - 1) / NestedBlockSize;
        return (elements + 1) / 2 + blocks + 4 * nested + 4;
    }

    public static double Nf4BitsPerParameter(long elements) => 8.0 * Nf4Bytes(elements) / elements;

    /// <summary>Optimizer state for trainable tensors of the given element counts.</summary>
    public static long OptimizerStateBytes(IEnumerable<long> tensorSizes, string optimizer) => optimizer switch
    {
        "adamw" => tensorSizes.Sum(s => 8 * s),
        "adamw8bit" => tensorSizes.Sum(s => s < MinSize8Bit ? 8 * s : 2 * s + 2 * 4 * ((s + Block8Bit - 1) / Block8Bit)),
        _ => throw new PeftException($"optimizer \"{optimizer}\" is not one of {string.Join(", ", Optimizers)}"),
    };

    /// <summary>Bytes of one <see cref="BlockActivations"/> for n tokens.</summary>
    public static long BlockActivationBytes(ModelConfig c, long n)
    {
        long C = c.HiddenSize, F = c.IntermediateSize, qd = (long)c.NumHeads * c.HeadDim, kvd = (long)c.NumKvHeads * c.HeadDim;
        long floats = C + 1                                          // Xn1, Rstd1
            + (c.QkNorm ? qd + kvd + c.NumHeads + c.NumKvHeads : 0)  // QRaw, KRaw, RstdQ, RstdK
            + qd + 2 * kvd                                           // Q, K, V
            + qd + c.NumHeads                                        // Attn, Lse
            + C + C + 1                                              // Mid, Xn2, Rstd2
            + 3 * F                                                  // GateOut, UpOut, H
            + (c.IsGemma ? 2 * (C + 1) : 0);                         // AttnOut, MlpOut and their rstd (gemma's sandwich norms)
        return 4 * n * floats;
    }

    /// <summary>Xn1, Xn2 (n,C) and H (n,F): shared by all blocks' saved activations (recomputed in backward).</summary>
    public static long SharedBlockBytes(ModelConfig c, long n) => 4 * n * (2L * c.HiddenSize + c.IntermediateSize);

    /// <summary>Bytes of the <see cref="BlockGradients"/> scratch for n tokens.</summary>
    public static long BlockGradientBytes(ModelConfig c, long n)
    {
        long C = c.HiddenSize, F = c.IntermediateSize, qd = (long)c.NumHeads * c.HeadDim, kvd = (long)c.NumKvHeads * c.HeadDim;
        return 4 * n * (C + 2 * qd + 2 * kvd + 3 * F + (c.QkNorm ? qd + kvd : 0) + (c.IsGemma ? C : 0));
    }

    /// <summary>What <see cref="ModelPass.ActivationBytes"/> reports after a training step.</summary>
    public static long ModelPassActivationBytes(ModelConfig c, int batch, int seq, bool recompute)
    {
        long n = (long)batch * seq, C = c.HiddenSize;
        return 4 * n * C * (c.NumLayers + 1)                          // residual streams
            + (recompute ? 1 : c.NumLayers) * BlockActivationBytes(c, n)
            - (recompute ? 0 : (c.NumLayers - 1) * SharedBlockBytes(c, n))   // Xn1, Xn2, H exist once, recomputed in backward
            + BlockGradientBytes(c, n)
            + 2 * 4 * n * C                                           // gradient ping-pong
            + 4 * n * C + 4 * n;                                      // final norm output, its rstd
    }

    /// <summary>Per adapter module, saved by the pass: x·Aᵀ (n, r); DoRA also the pre-scaling output (n, out) and its
    /// factor and norm (2·out). Over all layers, or one layer with gradient checkpointing (released after each block).</summary>
    public static long AdapterSavedBytes(ModelConfig c, long n, int rank, IEnumerable<string> targets, bool dora, bool recompute) =>
        ParameterCounter.PerModule(c, targets, rank).Sum(m => (recompute ? 1L : c.NumLayers) * 4 * (n * rank + (dora ? n * m.Module.Out + 2L * m.Module.Out : 0)));

    /// <summary>
    /// Transient buffers that scale with the shape: the cross-entropy logits chunk (≈ 2^21 floats, pooled arrays rounded
    /// to a power of two) and row state; the adapters' rank-gradient scratch (n·r); DoRA's per-module norm caches
    /// (f, ‖·‖ float32 and base row norms float64) and the garbage of their per-forward recomputation; the 4-bit path's
    /// dequantized copy of the largest projection.
    /// </summary>
    public static long ScratchBytes(ModelConfig c, long n, int rank, IEnumerable<string> targets, bool full, bool dora, bool quantized, bool recompute)
    {
        long chunk = Math.Min(Math.Clamp((1L << 21) / n / 64 * 64, 256, 8192), c.VocabSize);
        long crossEntropy = 4 * NextPow2(n * chunk) + n * (4 + 4 + 4 + 4 + 8);
        if (full) return crossEntropy;
        var modules = ParameterCounter.PerModule(c, targets, rank);
        long rankGrad = 4 * Math.Max(n * rank, 1024);
        // DoRA keeps the frozen base's row norms (float64, out) per module; its per-forward W·Aᵀ, A·Aᵀ, B·A·Aᵀ and row
        // norms are pool buffers reused from module to module (the largest module's).
        long doraCaches = dora ? modules.Sum(m => (long)c.NumLayers * 8 * m.Module.Out) : 0;
        long doraGarbage = dora ? modules.Max(m => 4L * (2L * m.Module.Out * rank + (long)rank * rank + 2L * m.Module.Out)) : 0;
        long dequant = quantized ? 4 * ParameterCounter.Projections(c).Max(p => p.WeightParameters) : 0;
        return crossEntropy + rankGrad + doraCaches + doraGarbage + dequant;
    }

    static long NextPow2(long x)
    {
        long p = 1;
        while (p < x) p <<= 1;
        return p;
    }
}
