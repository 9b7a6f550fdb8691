using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Peft;

namespace PeftSharp.Cuda;

/// <summary>One decoder block's weights on the device (separate q, k, v, gate, up projections; Llama / Mistral form).</summary>
internal sealed class DeviceLayer : IDisposable
{
    public required int Index { get; init; }
    public required DeviceArray<float> InputNorm { get; init; }
    public required DeviceArray<float> PostNorm { get; init; }
    public required DeviceProjection Q { get; init; }
    public required DeviceProjection K { get; init; }
    public required DeviceProjection V { get; init; }
    public required DeviceProjection O { get; init; }
    public required DeviceProjection Gate { get; init; }
    public required DeviceProjection Up { get; init; }
    public required DeviceProjection Down { get; init; }

    public IEnumerable<DeviceProjection> Projections => [Q, K, V, O, Gate, Up, Down];

    public void Dispose()
    {
        InputNorm.Dispose(); PostNorm.Dispose();
        foreach (var p in Projections) p.Dispose();
    }
}

/// <summary>
/// A <see cref="PeftModel"/>'s frozen weights (embedding and LM head in their dtype, norms float32, projections dense
/// or 4-bit) and its active LoRA adapter, uploaded once to the device. What the device path does not implement yet is
/// refused here with a message that names it, before anything is allocated.
/// </summary>
internal sealed class DeviceModel : IDisposable
{
    public ModelConfig Config { get; }
    public DeviceMatrix Embed { get; }
    public DeviceMatrix LmHead { get; }
    public DeviceArray<float> FinalNorm { get; }
    public DeviceLayer[] Layers { get; }
    public IReadOnlyList<DeviceParameter> Parameters { get; }
    /// <summary>Floats of the largest float32 weight slice any product needs (the shared scratch's size).</summary>
    public long ScratchFloats { get; }

    DeviceModel(ModelConfig c, DeviceMatrix embed, DeviceMatrix head, DeviceArray<float> finalNorm, DeviceLayer[] layers, List<DeviceParameter> ps)
    {
        Config = c; Embed = embed; LmHead = head; FinalNorm = finalNorm; Layers = layers; Parameters = ps;
        ScratchFloats = layers.SelectMany(l => l.Projections).Max(p => (long)p.In * p.Out);
    }

    /// <summary>Throws a <see cref="PeftException"/> naming the first feature the device path lacks.</summary>
    public static void CheckSupported(PeftModel pm, IReadOnlyList<Parameter> trainable, string optimizer)
    {
        var c = pm.Model.Config;
        string? why = c.FusedProjections ? $"fused qkv/gate_up projections ({c.ModelType})"
            : c.QkNorm ? $"per-head q/k norms ({c.ModelType})"
            : c.QkvBias || c.OutputBias || c.MlpBias ? $"projection biases ({c.ModelType})"
            : optimizer != "adamw" ? $"the optimizer '{optimizer}' (the device runs adamw)"
            : pm.Active == null ? "full fine-tuning (the device trains a LoRA adapter)"
            : null;
        if (why == null && pm.Model.Layers.SelectMany(l => l.Projections).Select(CausalLM.BaseProjection)
                .FirstOrDefault(p => p is not (Linear or QuantizedLinear)) is { } unsupported)
            why = $"{unsupported.GetType().Name} base weights ({unsupported.Name}; the device holds dense and NF4/FP4 weights)";
        if (why == null && pm.Active is { } name)
        {
            var cfg = pm.Configs[name];
            why = cfg.UseDora ? "DoRA adapters" : cfg.LoraDropout > 0 ? $"lora_dropout {cfg.LoraDropout} (set it to 0)" : null;
            var adapterParams = new HashSet<Parameter>(pm.LoraModules.SelectMany(m => m.AdapterParameters(name)), ReferenceEqualityComparer.Instance);
            var other = trainable.FirstOrDefault(p => !adapterParams.Contains(p));
            if (why == null && other != null) why = $"training '{other.Name}' (modules_to_save, biases, norms or the base): the device trains LoRA A/B only";
        }
        if (why != null) throw new PeftException($"the CUDA device path does not support {why} yet; use --device cpu");
    }

    public static DeviceModel Upload(GpuDevice device, PeftModel pm)
    {
        var m = pm.Model;
        var c = m.Config;
        string active = pm.Active!;
        var ps = new List<DeviceParameter>();
        var owned = new List<IDisposable>();
        try
        {
            DeviceProjection Proj(ILinear l)
            {
                LoraAdapter? host = null;
                if (l is LoraLinear lora && lora.Adapters.TryGetValue(active, out var ad) && ad.Trainable) host = ad;
                var frozen = CausalLM.BaseProjection(l);
                DeviceAdapter? dev = host == null ? null : new DeviceAdapter(device, host);
                if (dev != null) { ps.Add(dev.A); ps.Add(dev.B); }
                DeviceProjection p = frozen switch
                {
                    Linear lin => new DeviceProjection(l.Name, new DeviceMatrix(device, lin.Weight), null, dev),
                    QuantizedLinear q => new DeviceProjection(l.Name, null, new DeviceQuant4(device, q.Weight), dev),
                    _ => throw new PeftException($"{l.Name}: the CUDA device path cannot hold a {frozen.GetType().Name}"),
                };
                owned.Add(p);
                return p;
            }
            DeviceArray<float> Norm(Models.Norm n)
            {
                var a = device.Upload<float>(n.Values);
                owned.Add(a);
                return a;
            }
            var layers = new DeviceLayer[c.NumLayers];
            for (int i = 0; i < c.NumLayers; i++)
            {
                var l = m.Layers[i];
                layers[i] = new DeviceLayer
                {
                    Index = i, InputNorm = Norm(l.InputNorm), PostNorm = Norm(l.PostNorm),
                    Q = Proj(l.Q!), K = Proj(l.K!), V = Proj(l.V!), O = Proj(l.O), Gate = Proj(l.Gate!), Up = Proj(l.Up!), Down = Proj(l.Down),
                };
            }
            var embed = new DeviceMatrix(device, m.Embed);
            owned.Add(embed);
            var head = m.Tied ? embed : new DeviceMatrix(device, m.LmHead);
            owned.Add(head);
            var final = Norm(m.FinalNorm);
            return new DeviceModel(c, embed, head, final, layers, ps);
        }
        catch
        {
            foreach (var d in owned.Distinct()) d.Dispose();
            throw;
        }
    }

    public long WeightBytes => Embed.Bytes + (LmHead == Embed ? 0 : LmHead.Bytes) + Layers.Sum(l => l.Projections.Sum(p => p.WeightBytes));

    public void Dispose()
    {
        foreach (var l in Layers) l.Dispose();
        Embed.Dispose();
        if (LmHead != Embed) LmHead.Dispose();
        FinalNorm.Dispose();
    }
}
