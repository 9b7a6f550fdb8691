using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Peft;

// PEFT's `bias` modes and the PiSSA save conversion: the parts of an adapter that live outside its A/B factors.
public sealed partial class PeftModel
{
    readonly Dictionary<string, List<Linear>> _biases = new();   // adapter → base projections whose bias it trains
    readonly HashSet<string> _biasFrozen = new();                 // adapters loaded for inference (biases not trained)

    /// <summary>
    /// bias="none": nothing. "all": every bias of the model. "lora_only": the biases of the targeted modules.
    /// Models without biases (llama) get an empty list.
    /// </summary>
    List<Linear> TrainableBiases(LoraConfig config, IReadOnlyList<string> targeted)
    {
        var result = new List<Linear>();
        if (config.Bias == "none") return result;
        foreach (var p in Model.Layers.SelectMany(l => l.Projections))
        {
            if (config.Bias == "lora_only" && !targeted.Contains(p.Name)) continue;
            var dense = DenseBase(p);
            if (dense == null)
            {
                if (p is IFrozenProjection { BiasOrEmpty.IsEmpty: false } || (p is IWrapsLinear w && w.Base is IFrozenProjection { BiasOrEmpty.IsEmpty: false }))
                    throw new PeftException($"{p.Name}: bias=\"{config.Bias}\" needs a dense base layer to train its bias, this one is {p.GetType().Name}");
                continue;
            }
            if (dense.Bias != null) result.Add(dense);
        }
        return result;
    }

    static Linear? DenseBase(ILinear l) => l switch
    {
        Linear lin => lin,
        IWrapsLinear w => DenseBase(w.Base),
        _ => null,
    };

    /// <summary>The active adapter's biases are trainable (unless it was loaded frozen); every other bias is not.</summary>
    void UpdateBiasTrainability()
    {
        foreach (var list in _biases.Values) foreach (var lin in list) lin.BiasTrainable = false;
        if (Active != null && !_biasFrozen.Contains(Active) && _biases.TryGetValue(Active, out var active))
            foreach (var lin in active) lin.MakeBiasTrainable();
    }

    /// <summary>
    /// PEFT's saved bias keys (without the prefix): a module wrapped by an adapter keeps its bias on the base layer
    /// (<c>&lt;module&gt;.base_layer.bias</c>); an untargeted one (bias="all") under <c>&lt;module&gt;.bias</c>.
    /// </summary>
    IEnumerable<(string Key, Tensor Value)> BiasTensors(string name)
    {
        if (!_biases.TryGetValue(name, out var list)) yield break;
        var wrapped = new HashSet<string>(LoraModules.Select(m => m.Name));
        foreach (var lin in list)
        {
            var p = lin.EnsureBiasParameter()!;
            yield return (wrapped.Contains(lin.Name) ? lin.Name + ".base_layer.bias" : lin.Name + ".bias", p.Value);
        }
    }

    bool IsPissaAdapter(string name) => LoraModules.Any(m => m.Adapters.TryGetValue(name, out var a) && a.InitialA != null);

    /// <summary>The adapter's tensors with every PiSSA module's A/B replaced by the rank-2r [A; A0], [B | −B0].</summary>
    List<(string Name, Tensor Tensor)> ConvertedPissaTensors(string name, List<Tensor> owned)
    {
        var converted = new Dictionary<string, Tensor>();
        foreach (var m in LoraModules)
        {
            if (!m.Adapters.TryGetValue(name, out var ad)) continue;
            if (ad.InitialA == null)
                throw new PeftException($"adapter '{name}': module {m.Name} has no PiSSA initial factors; cannot convert it to a LoRA of the original base");
            var (a2, b2) = PissaConversion.ConvertFactors(ad);
            var ta = new Tensor(DType.F32, 2 * ad.Rank, m.InFeatures);
            var tb = new Tensor(DType.F32, m.OutFeatures, 2 * ad.Rank);
            owned.Add(ta);
            owned.Add(tb);
            a2.CopyTo(ta.Floats);
            b2.CopyTo(tb.Floats);
            converted[SavePrefix + ad.A.Name] = ta;
            converted[SavePrefix + ad.B.Name] = tb;
        }
        return AdapterTensors(name).Select(t => (t.Name, converted.TryGetValue(t.Name, out var c) ? c : t.Tensor)).ToList();
    }
}
