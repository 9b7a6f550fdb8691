using PeftSharp.Tests.TestSupport;
using System.Text;
using PeftSharp.Quantization;
using PeftSharp.Tensors;

namespace PeftSharp.Tests.Quantization;

[Collection("GlobalKernelSettings")]
public class BnbQuantStateTests
{
    const string P = "model.layers.0.self_attn.q_proj";

    static Dictionary<string, Tensor> Dict(List<(string Name, Tensor Tensor)> l) => l.ToDictionary(x => x.Name, x => x.Tensor);

    [Theory]
    [InlineData(Quant4Type.NF4, true)]
    [InlineData(Quant4Type.NF4, false)]
    [InlineData(Quant4Type.FP4, true)]
    [InlineData(Quant4Type.FP4, false)]
    public void Round_trip_gives_identical_state_and_weights(Quant4Type type, bool dq)
    {
        var w = TestSupport.Numerics.RandomFloats(new Random(7), 13 * 77, 0.2f); // odd count
        using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [13, 77], type, 64, dq);
        var tensors = BnbQuantState.ToTensors(P, q);
        try
        {
            var d = Dict(tensors);
            Assert.Equal(new[] { 501, 1 }, d[$"{P}.weight"].Shape);
            Assert.Equal(DType.U8, d[$"{P}.weight"].DType);
            Assert.Equal(dq ? DType.U8 : DType.F32, d[$"{P}.weight.absmax"].DType);
            Assert.Equal(new[] { 16 }, d[$"{P}.weight.quant_map"].Shape);
            Assert.Equal(dq, d.ContainsKey($"{P}.weight.nested_absmax"));
            Assert.Equal(dq, d.ContainsKey($"{P}.weight.nested_quant_map"));
            Assert.True(BnbQuantState.IsQuantized(P, k => d.GetValueOrDefault(k)));
            using var r = BnbQuantState.FromTensors(P, d, "model.safetensors");
            Assert.Equal(q.Shape, r.Shape);
            Assert.Equal(type, r.QuantType);
            Assert.Equal(64, r.BlockSize);
            Assert.Equal(q.PackedSpan.ToArray(), r.PackedSpan.ToArray());
            Assert.Equal(q.BlockScales(), r.BlockScales());
            var a = new float[w.Length];
            var b = new float[w.Length];
            q.Dequantize(TestCompute.Cpu, a);
            r.Dequantize(TestCompute.Cpu, b);
            Assert.Equal(a, b);
        }
        finally { foreach (var (_, t) in tensors) t.Dispose(); }
    }

    [Fact]
    public void Quant_state_json_is_written_like_python_json_dumps()
    {
        var w = new float[128];
        for (int i = 0; i < 128; i++) w[i] = (float)(Math.Sin(0.37 * i + 0.1) * (i < 64 ? 0.02 : 0.05));
        using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [2, 64], Quant4Type.NF4, 64, doubleQuant: true, dtypeName: "bfloat16");
        string expected = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [2, 64], " +
            "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": " + BnbQuantState.PythonFloatRepr(q.NestedOffset) + "}";
        Assert.Equal(expected, BnbQuantState.QuantStateJson(q));
        using var plain = Quantized4Bit.Quantize(TestCompute.Cpu, w, [2, 64], Quant4Type.FP4, 128);
        Assert.Equal("{\"quant_type\": \"fp4\", \"blocksize\": 128, \"dtype\": \"float32\", \"shape\": [2, 64]}", BnbQuantState.QuantStateJson(plain));
    }

    [Theory]
    [InlineData(0.5, "0.5")]
    [InlineData(2.0, "2.0")]
    [InlineData(1e-05, "1e-05")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(1.5e-07, "1.5e-07")]
    [InlineData(1e+16, "1e+16")]
    [InlineData((double)0.1f, "0.10000000149011612")]
    [InlineData(-2.5e17, "-2.5e+17")]
    public void Python_float_repr(double v, string expected) => Assert.Equal(expected, BnbQuantState.PythonFloatRepr(v));

    [Fact]
    public void Malformed_states_give_clear_errors()
    {
        var w = TestSupport.Numerics.RandomFloats(new Random(3), 256, 1f);
        using var q = Quantized4Bit.Quantize(TestCompute.Cpu, w, [4, 64], Quant4Type.NF4, 64, doubleQuant: true);
        void Expect(Action<Dictionary<string, Tensor>> mutate, string fragment)
        {
            var tensors = BnbQuantState.ToTensors(P, q);
            var d = Dict(tensors);
            try
            {
                mutate(d);
                var e = Assert.Throws<PeftException>(() => BnbQuantState.FromTensors(P, d, "shard-1.safetensors"));
                Assert.Contains("shard-1.safetensors", e.Message);
                Assert.Contains(fragment, e.Message);
            }
            finally { foreach (var (_, t) in tensors) t.Dispose(); }
        }
        Tensor Json(string s) { var b = Encoding.UTF8.GetBytes(s); var t = new Tensor(DType.U8, b.Length); b.CopyTo(t.Span<byte>()); return t; }
        string key = BnbQuantState.QuantStateKey(P, Quant4Type.NF4);
        Expect(d => d.Remove($"{P}.weight.nested_absmax"), "nested_absmax");
        Expect(d => d.Remove(key), "quant_state");
        Expect(d => d[key] = Json("{not json"), "not valid JSON");
        Expect(d => d[key] = Json("{\"quant_type\": \"int4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [4, 64]}"), "int4");
        Expect(d => d[key] = Json("{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [4, 64]}"), "does not match");
        Expect(d => d[key] = Json("{\"quant_type\": \"nf4\", \"blocksize\": 48, \"dtype\": \"float32\", \"shape\": [4, 64], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.1}"), "blocksize 48");
        Expect(d => d[key] = Json("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [4, 66], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.1}"), "expected 132");
        Expect(d => d[key] = Json("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [4, 64], \"nested_blocksize\": 128, \"nested_dtype\": \"float32\", \"nested_offset\": 0.1}"), "nested_blocksize");
        Expect(d => d[key] = Json("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"int8\", \"shape\": [4, 64]}"), "int8");
        Expect(d => { d[$"{P}.weight.quant_map"].Dispose(); d[$"{P}.weight.quant_map"] = new Tensor(DType.F32, 15); }, "quant_map");
        Expect(d => d[$"{P}.weight.quant_map"].Floats[3] = 0.5f, "quant_map[3]");
        Expect(d => { d[$"{P}.weight.absmax"].Dispose(); d[$"{P}.weight.absmax"] = new Tensor(DType.F32, 4); }, "expected U8");
    }
}
