using System.Text.Json.Nodes;
using PeftSharp.IO;
using PeftSharp.Models;
using PeftSharp.Peft;
using PeftSharp.Quantization;
using PeftSharp.Tensors;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.QLoRA;

/// <summary>`peft quantize` output (bitsandbytes keys + transformers' quantization_config) read back by our loader.</summary>
public class BnbCheckpointTests
{
    static readonly int[] Ids = [1, 5, 9, 33, 2, 17, 40, 8];

    static (string src, string dst, Dictionary<string, Tensor> w, ModelConfig c) Quantize(QuantizeOptions o)
    {
        var c = QLoraTestModels.Config() with { TorchDtype = "bfloat16" };
        var w = TinyModels.Weights(c, 13, DType.BF16);
        var src = TinyModels.WriteFolder(c, w);
        File.WriteAllText(Path.Combine(src, "tokenizer.json"), "{}");
        var dst = src + "-4bit";
        using (var m = CausalLM.Load(src, o, TestCompute.Cpu))
            HfCheckpoint.Write(dst, m, src, DType.BF16);
        return (src, dst, w, c);
    }

    static void Cleanup(params string[] dirs) { foreach (var d in dirs) if (Directory.Exists(d)) Directory.Delete(d, true); }

    [Theory]
    [InlineData(Quant4Type.NF4, true)]
    [InlineData(Quant4Type.FP4, false)]
    public void QuantizedCheckpoint_RoundTripsThroughTheLoader(Quant4Type type, bool dq)
    {
        var (src, dst, w, c) = Quantize(new QuantizeOptions(type, dq, 64));
        try
        {
            var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(dst, "config.json")))!["quantization_config"]!;
            Assert.Equal("bitsandbytes", (string?)cfg["quant_method"]);
            Assert.True((bool)cfg["load_in_4bit"]!);
            Assert.False((bool)cfg["load_in_8bit"]!);
            Assert.Equal(type.BnbName(), (string?)cfg["bnb_4bit_quant_type"]);
            Assert.Equal(dq, (bool)cfg["bnb_4bit_use_double_quant"]!);
            Assert.Equal("uint8", (string?)cfg["bnb_4bit_quant_storage"]);
            Assert.True(File.Exists(Path.Combine(dst, "tokenizer.json")));

            using var ckpt = SafetensorsCheckpoint.OpenDirectory(dst);
            const string P = "model.layers.0.self_attn.q_proj";
            Assert.Equal(DType.U8, ckpt.Entry(P + ".weight").DType);
            Assert.Equal([64 * 64 / 2, 1], ckpt.Entry(P + ".weight").Shape);
            Assert.Equal(dq ? DType.U8 : DType.F32, ckpt.Entry(P + ".weight.absmax").DType);
            Assert.True(ckpt.Contains(P + ".weight.quant_map"));
            Assert.Equal(dq, ckpt.Contains(P + ".weight.nested_absmax"));
            Assert.Equal(dq, ckpt.Contains(P + ".weight.nested_quant_map"));
            Assert.True(ckpt.Contains($"{P}.weight.quant_state.bitsandbytes__{type.BnbName()}"));
            Assert.Equal(DType.BF16, ckpt.Entry(WeightNames.Embed).DType);
            Assert.Equal(DType.BF16, ckpt.Entry(WeightNames.LmHead).DType);

            // bits per parameter measured from the file: (n/2 + absmax [+ nested]) · 8 / n
            var stats = QuantizedFileStats.Measure(ckpt, dst);
            Assert.Equal(c.NumLayers * 7, stats.Modules);
            long n = 0, bytes = 0;
            foreach (var (o, i) in new[] { (64, 64), (32, 64), (32, 64), (64, 64), (96, 64), (96, 64), (64, 96) })
            {
                long e = (long)o * i, blocks = (e + 63) / 64;
                n += e;
                bytes += e / 2 + (dq ? blocks + 4 * ((blocks + 255) / 256) : 4 * blocks);
            }
            Assert.Equal(n * c.NumLayers, stats.Parameters);
            Assert.Equal(bytes * 8.0 / n, stats.BitsPerParameter, 9);

            using var fromSrc = CausalLM.Load(src, new QuantizeOptions(type, dq, 64), TestCompute.Cpu);
            using var fromFile = CausalLM.Load(dst);                 // detected from the bnb keys, no option needed
            Assert.True(fromFile.Quantization!.PreQuantized);
            Assert.Equal(type, fromFile.Quantization.Options.Type);
            Assert.Equal(dq, fromFile.Quantization.Options.DoubleQuant);
            foreach (var (a, b) in fromSrc.QuantizedProjections().Zip(fromFile.QuantizedProjections()))
            {
                Assert.Equal(a.Name, b.Name);
                Assert.Equal(a.Weight.PackedSpan.ToArray(), b.Weight.PackedSpan.ToArray());
                Assert.Equal(a.Weight.BlockScales(), b.Weight.BlockScales());
            }
            Assert.Equal(Passes.Logits(fromSrc, Ids), Passes.Logits(fromFile, Ids));
        }
        finally { Cleanup(src, dst); foreach (var t in w.Values) t.Dispose(); }
    }

    /// <summary>Rewrites model.safetensors of <paramref name="dir"/> with tensors dropped or replaced.</summary>
    static void Rewrite(string dir, Func<string, Tensor, Tensor?> edit)
    {
        string path = Path.Combine(dir, "model.safetensors");
        var tmp = path + ".edit";
        using (var f = SafetensorsFile.Open(path))
        {
            var list = new List<(string, Tensor)>();
            foreach (var e in f.Entries)
            {
                var t = edit(e.Name, f.Get(e.Name));
                if (t != null) list.Add((e.Name, t));
            }
            SafetensorsWriter.Write(tmp, list);
        }
        File.Move(tmp, path, overwrite: true);
    }

    [Fact]
    public void MalformedQuantState_ErrorsNameTheTensor()
    {
        var (src, dst, w, _) = Quantize(QLoraTestModels.Nf4Dq);
        try
        {
            const string P = "model.layers.1.mlp.down_proj";
            Rewrite(dst, (n, t) => n == P + ".weight.absmax" ? null : t);
            var e = Assert.Throws<PeftException>(() => CausalLM.Load(dst));
            Assert.Contains(P + ".weight.absmax", e.Message);

            Cleanup(dst);
            using (var m = CausalLM.Load(src, QLoraTestModels.Nf4Dq, TestCompute.Cpu)) HfCheckpoint.Write(dst, m, src, DType.BF16);
            // a quant state whose shape disagrees with the config
            const string Q = "model.layers.0.self_attn.k_proj";
            Rewrite(dst, (n, t) =>
            {
                if (n != Q + ".weight.quant_state.bitsandbytes__nf4") return t;
                var json = System.Text.Encoding.UTF8.GetString(t.Span<byte>()).Replace("\"shape\": [32, 64]", "\"shape\": [64, 32]");
                var bytes = System.Text.Encoding.UTF8.GetBytes(json);
                var nt = new Tensor(DType.U8, bytes.Length);
                bytes.CopyTo(nt.Span<byte>());
                return nt;
            });
            e = Assert.Throws<PeftException>(() => CausalLM.Load(dst));
            Assert.Contains(Q + ".weight", e.Message);
            Assert.Contains("[64, 32]", e.Message);

            Cleanup(dst);
            using (var m = CausalLM.Load(src, QLoraTestModels.Nf4Dq, TestCompute.Cpu)) HfCheckpoint.Write(dst, m, src, DType.BF16);
            // truncated packed codes
            Rewrite(dst, (n, t) =>
            {
                if (n != P + ".weight") return t;
                var nt = new Tensor(DType.U8, (int)t.ElementCount - 2, 1);
                t.Span<byte>()[..((int)t.ElementCount - 2)].CopyTo(nt.Span<byte>());
                return nt;
            });
            e = Assert.Throws<PeftException>(() => CausalLM.Load(dst));
            Assert.Contains(P + ".weight", e.Message);
        }
        finally { Cleanup(src, dst); foreach (var t in w.Values) t.Dispose(); }
    }

    [Fact]
    public void MergeIntoPreQuantizedCheckpoint_WritesA4BitModel()
    {
        var (src, dst, w, _) = Quantize(QLoraTestModels.Nf4Dq);
        var merged = dst + "-merged";
        try
        {
            float[] expected;
            using (var pm = new PeftModel(CausalLM.Load(dst), TestCompute.Cpu))
            {
                pm.AddAdapter("default", new LoraConfig { R = 2, LoraAlpha = 4, TargetModulesRegex = "all-linear", InitLoraWeights = "gaussian" }, 1);
                var r = AdapterMerge.MergeActive(pm, Ids);
                Assert.True(r.MaxRequantizationError > 0);
                expected = Passes.Logits(pm, Ids);
                HfCheckpoint.Write(merged, pm.Model, dst, DType.BF16);
            }
            using var back = CausalLM.Load(merged);
            Assert.NotNull(back.Quantization);
            Assert.Equal(expected, Passes.Logits(back, Ids));
        }
        finally { Cleanup(src, dst, merged); foreach (var t in w.Values) t.Dispose(); }
    }
}
