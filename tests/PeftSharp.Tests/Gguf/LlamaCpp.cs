using PeftSharp.Tests.TestSupport;
using LLama;
using LLama.Common;
using LLama.Native;

namespace PeftSharp.Tests.Gguf;

/// <summary>llama.cpp (through LLamaSharp's CPU backend) as the independent engine that exported GGUF files are checked
/// against: logits of a token sequence, with an optional GGUF LoRA adapter, and its tokenizer.</summary>
public static class LlamaCpp
{
    internal static readonly object Gate = new();   // llama.cpp's backend and logging are process-wide

    // llama.cpp logs every model load to stderr; keep warnings and errors only (they show up in failing tests' output)
    static LlamaCpp() => NativeLogConfig.llama_log_set((level, message) =>
    {
        if (level is LLamaLogLevel.Warning or LLamaLogLevel.Error) Console.Error.Write(message);
    });

    static ModelParams Params(string gguf, bool vocabOnly = false, uint contextSize = 256) => new(gguf)
    {
        ContextSize = contextSize,
        BatchSize = contextSize,   // every test sequence is decoded as one batch
        UBatchSize = contextSize,
        GpuLayerCount = 0,
        Threads = 2,
        BatchThreads = 2,
        // float32 KV cache and no flash attention: the attention is computed in float32, as PeftSharp does
        TypeK = GGMLType.GGML_TYPE_F32,
        TypeV = GGMLType.GGML_TYPE_F32,
        FlashAttention = false,
        VocabOnly = vocabOnly,
    };

    /// <summary>Logits (one row of vocab-size floats per position) of <paramref name="ids"/> in one batch, in a context
    /// of <paramref name="contextSize"/> tokens (which decides, e.g., Phi-3's LongRoPE factor set in llama.cpp).</summary>
    public static float[][] Logits(string gguf, int[] ids, string? lora = null, float loraScale = 1f, uint contextSize = 256)
    {
        lock (Gate)
        {
            var p = Params(gguf, contextSize: contextSize);
            using var weights = LLamaWeights.LoadFromFile(p);
            using var ctx = weights.CreateContext(p);
            if (lora != null)
            {
                var adapter = weights.NativeHandle.LoadLoraFromFile(lora);
                ctx.NativeHandle.SetLoraAdapters([(adapter, loraScale)]);
            }
            var batch = new LLamaBatch();
            for (int i = 0; i < ids.Length; i++) batch.Add((LLamaToken)ids[i], i, LLamaSeqId.Zero, true);
            var rc = ctx.NativeHandle.Decode(batch);
            if (rc != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {rc}");
            var rows = new float[ids.Length][];
            for (int i = 0; i < ids.Length; i++) rows[i] = ctx.NativeHandle.GetLogitsIth(i).ToArray();
            return rows;
        }
    }

    /// <summary>Greedy continuation of <paramref name="prompt"/> by <paramref name="steps"/> tokens (argmax, lowest id on ties).</summary>
    public static int[] Greedy(string gguf, int[] prompt, int steps, string? lora = null)
    {
        lock (Gate)
        {
            var p = Params(gguf);
            using var weights = LLamaWeights.LoadFromFile(p);
            using var ctx = weights.CreateContext(p);
            if (lora != null) ctx.NativeHandle.SetLoraAdapters([(weights.NativeHandle.LoadLoraFromFile(lora), 1f)]);
            var outIds = new List<int>();
            var batch = new LLamaBatch();
            for (int i = 0; i < prompt.Length; i++) batch.Add((LLamaToken)prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
            int pos = prompt.Length;
            for (int s = 0; s < steps; s++)
            {
                if (ctx.NativeHandle.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama_decode failed");
                var logits = ctx.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
                int best = 0;
                for (int v = 1; v < logits.Length; v++) if (logits[v] > logits[best]) best = v;
                outIds.Add(best);
                batch.Clear();
                batch.Add((LLamaToken)best, pos++, LLamaSeqId.Zero, true);
            }
            return outIds.ToArray();
        }
    }

    /// <summary>llama.cpp's tokenization of each text (adding BOS/EOS if the vocabulary says to; special tokens in the
    /// text are parsed), from the vocabulary alone.</summary>
    public static int[][] Tokenize(string gguf, IEnumerable<string> texts)
    {
        lock (Gate)
        {
            var p = Params(gguf, vocabOnly: true);
            using var weights = LLamaWeights.LoadFromFile(p);
            return texts.Select(text => weights.Tokenize(text, add_bos: true, special: true, System.Text.Encoding.UTF8).Select(t => (int)t).ToArray()).ToArray();
        }
    }
}
