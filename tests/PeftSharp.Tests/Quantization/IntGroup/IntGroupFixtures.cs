using System.Text.Json.Nodes;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Quantization.IntGroup;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Quantization.IntGroup;

/// <summary>
/// Test checkpoints in GPTQ/AWQ form built from known dense weights: every projection is RTN-quantized into the
/// format's exact tensors (with a random act-order permutation per module when desc_act), the rest stays dense.
/// </summary>
internal sealed class PackedWeights : IDisposable
{
    public required ModelConfig Config { get; init; }
    public required IntGroupConfig Packing { get; init; }
    /// <summary>The known weights the checkpoint was quantized from.</summary>
    public required Dictionary<string, Tensor> Dense { get; init; }
    /// <summary>The checkpoint's tensors: packed projections, dense everything else.</summary>
    public required Dictionary<string, Tensor> Checkpoint { get; init; }

    public Tensor? Get(string name) => Checkpoint.GetValueOrDefault(name);

    /// <summary>The model, loaded from the tensors as a checkpoint folder would be.</summary>
    public CausalLM Model() => CausalLM.FromTensors(Config, Get, "test checkpoint", null, null, TestCompute.Cpu, Packing);

    /// <summary>The float64 reference dequantization of projection <paramref name="module"/> ([out, in]).</summary>
    public double[] Reference(string module)
    {
        var w = Dense[module + ".weight"];
        return IntGroupReference.Dequantize(Checkpoint, module, Packing.Method, Packing.Packing == IntGroupPacking.GptqV1,
            Packing.Bits, Packing.GroupSize, w.Shape[0], w.Shape[1]);
    }

    /// <summary>A dense model whose projections are the reference dequantization (float32).</summary>
    public CausalLM DenseOverReference(List<Tensor> owned)
    {
        var map = new Dictionary<string, Tensor>(Dense);
        foreach (var name in Dense.Keys.Where(CausalLM.IsProjectionWeight).ToList())
        {
            var r = Reference(name[..^".weight".Length]);
            var t = new Tensor(DType.F32, Dense[name].Shape);
            for (int i = 0; i < r.Length; i++) t.Floats[i] = (float)r[i];
            owned.Add(t);
            map[name] = t;
        }
        return TinyModels.Build(Config, map);
    }

    /// <summary>config.json + model.safetensors (+ tokenizer files) in a fresh temp folder.</summary>
    public string WriteFolder(string? tokenizerDir = null)
    {
        var dir = TinyRun.Temp("packed");
        var json = JsonNode.Parse(Config.ToJson())!.AsObject();
        json["quantization_config"] = IntGroupFixtures.ConfigJson(Packing);
        File.WriteAllText(Path.Combine(dir, "config.json"), json.ToJsonString());
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), Checkpoint.Select(kv => (kv.Key, kv.Value)));
        if (tokenizerDir != null)
            foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
                if (File.Exists(Path.Combine(tokenizerDir, f))) File.Copy(Path.Combine(tokenizerDir, f), Path.Combine(dir, f));
        return dir;
    }

    public void Dispose()
    {
        foreach (var t in Checkpoint.Values.Concat(Dense.Values).Distinct()) t.Dispose();
    }
}

internal static class IntGroupFixtures
{
    public static IntGroupConfig Gptq(int bits = 4, int group = 16, bool descAct = false, bool sym = false, bool v2 = false) =>
        new("gptq", v2 ? IntGroupPacking.GptqV2 : IntGroupPacking.GptqV1, bits, group, descAct, sym);

    public static IntGroupConfig Awq(int group = 32) => new("awq", IntGroupPacking.AwqGemm, 4, group, false, false);

    /// <summary>quantization_config as transformers/optimum (GPTQConfig) and AutoAWQ write it.</summary>
    public static JsonObject ConfigJson(IntGroupConfig c) => c.Method == "awq"
        ? new JsonObject { ["quant_method"] = "awq", ["bits"] = 4, ["group_size"] = c.GroupSize, ["zero_point"] = true, ["version"] = "gemm", ["modules_to_not_convert"] = null }
        : new JsonObject
        {
            ["quant_method"] = "gptq", ["bits"] = c.Bits, ["group_size"] = c.GroupSize, ["desc_act"] = c.DescAct, ["sym"] = c.Sym,
            ["damp_percent"] = 0.01, ["true_sequential"] = true, ["static_groups"] = false,
            ["checkpoint_format"] = c.Packing == IntGroupPacking.GptqV2 ? "gptq_v2" : "gptq",
        };

    /// <summary>A GPTQ/AWQ copy of a dense model folder (config, tokenizer files, weights): every projection RTN-packed
    /// from its real weights, everything else as it is. Returns the new folder.</summary>
    public static string PackFolder(string denseDir, IntGroupConfig packing)
    {
        var outDir = TinyRun.Temp("packed-folder");
        using var model = CausalLM.Load(denseDir);
        var tensors = new List<(string, Tensor)>();
        var owned = new List<Tensor>();
        try
        {
            foreach (var (name, t) in model.NamedWeights()) tensors.Add((name, t));
            foreach (var p in model.Layers.SelectMany(l => l.Projections))
            {
                var w = CausalLM.BaseLinear(p).Weight.ToF32();
                owned.Add(w);
                foreach (var (n, packed) in IntGroupRtn.Quantize(p.Name, w.Floats, p.OutFeatures, p.InFeatures, packing))
                {
                    owned.Add(packed);
                    tensors.Add((n, packed));
                }
            }
            SafetensorsWriter.Write(Path.Combine(outDir, "model.safetensors"), tensors);
        }
        finally { foreach (var t in owned) t.Dispose(); }
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(denseDir, "config.json")))!.AsObject();
        json["quantization_config"] = ConfigJson(packing);
        File.WriteAllText(Path.Combine(outDir, "config.json"), json.ToJsonString());
        foreach (var f in Directory.GetFiles(denseDir).Where(f => Path.GetFileName(f).StartsWith("tokenizer") || Path.GetFileName(f).EndsWith("_config.json") && !f.EndsWith("/config.json")))
            File.Copy(f, Path.Combine(outDir, Path.GetFileName(f)), true);
        return outDir;
    }

    /// <summary>Known weights of <paramref name="c"/> (TinyModels' seeded ones, tamed) packed as <paramref name="packing"/>.</summary>
    public static PackedWeights Build(ModelConfig c, IntGroupConfig packing, ulong seed = 5, float scale = 0.5f)
    {
        var dense = TinyModels.Weights(c, seed);
        foreach (var (name, t) in dense)
            if (!name.EndsWith("norm.weight")) { var f = t.Floats; for (int i = 0; i < f.Length; i++) f[i] *= scale; }
        var ckpt = new Dictionary<string, Tensor>();
        foreach (var (name, t) in dense)
        {
            if (!CausalLM.IsProjectionWeight(name)) { ckpt[name] = t; continue; }
            string module = name[..^".weight".Length];
            int outF = t.Shape[0], inF = t.Shape[1];
            int[]? order = null;
            if (packing.DescAct)
            {
                var rng = new Random(module.Aggregate(17, (h, ch) => unchecked(h * 31 + ch)) ^ (int)seed);   // stable per module
                order = Enumerable.Range(0, inF).OrderBy(_ => rng.Next()).ToArray();
            }
            foreach (var (n, p) in IntGroupRtn.Quantize(module, t.Floats, outF, inF, packing, order)) ckpt[n] = p;
        }
        return new PackedWeights { Config = c, Packing = packing, Dense = dense, Checkpoint = ckpt };
    }
}
