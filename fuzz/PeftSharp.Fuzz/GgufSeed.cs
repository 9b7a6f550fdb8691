using System.Runtime.InteropServices;
using PeftSharp.IO.Gguf;

namespace PeftSharp.Fuzz;

/// <summary>The GGUF harness's seed: a complete one-layer llama (hidden 8, vocab 8, tied embeddings) with a byte-level
/// BPE vocabulary, small enough (about 2 KB) for afl to mutate. `PeftSharp.Fuzz make-gguf-seed PATH` writes it.</summary>
internal static class GgufSeed
{
    const int Hidden = 8, Ffn = 16, Vocab = 8;

    public static void Write(string path)
    {
        var m = new GgufMetadata(path);
        m.Set("general.architecture", "llama");
        m.Set("general.type", "model");
        m.Set("llama.context_length", 64u);
        m.Set("llama.embedding_length", (uint)Hidden);
        m.Set("llama.feed_forward_length", (uint)Ffn);
        m.Set("llama.block_count", 1u);
        m.Set("llama.attention.head_count", 2u);
        m.Set("llama.attention.head_count_kv", 2u);
        m.Set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        m.Set("llama.rope.freq_base", 10000f);
        m.Set("tokenizer.ggml.model", "gpt2");
        m.Set("tokenizer.ggml.pre", "default");
        m.Set("tokenizer.ggml.tokens", GgufValue.Of(["<s>", "</s>", "a", "b", "Ġ", "ab", "Ġa", "x"]));
        m.Set("tokenizer.ggml.token_type", GgufValue.Of([3, 3, 1, 1, 1, 1, 1, 1]));
        m.Set("tokenizer.ggml.merges", GgufValue.Of(["a b", "Ġ a"]));
        m.Set("tokenizer.ggml.bos_token_id", 0u);
        m.Set("tokenizer.ggml.eos_token_id", 1u);
        var tensors = new List<GgufTensorSource>
        {
            F32("token_embd.weight", Vocab, Hidden),
            F32("blk.0.attn_norm.weight", Hidden),
            F32("blk.0.attn_q.weight", Hidden, Hidden),
            F32("blk.0.attn_k.weight", Hidden, Hidden),
            F32("blk.0.attn_v.weight", Hidden, Hidden),
            F32("blk.0.attn_output.weight", Hidden, Hidden),
            F32("blk.0.ffn_norm.weight", Hidden),
            F32("blk.0.ffn_gate.weight", Ffn, Hidden),
            F32("blk.0.ffn_up.weight", Ffn, Hidden),
            F32("blk.0.ffn_down.weight", Hidden, Ffn),
            F32("output_norm.weight", Hidden),
        };
        GgufWriter.Write(path, m, tensors);
    }

    static GgufTensorSource F32(string name, params int[] shape)
    {
        var values = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int i = 0; i < values.Length; i++) values[i] = MathF.Sin(i + name.Length) * 0.5f;
        return new GgufTensorSource(name, GgmlType.F32, shape, values.Length * 4L, s => s.Write(MemoryMarshal.AsBytes(values.AsSpan())));
    }
}
