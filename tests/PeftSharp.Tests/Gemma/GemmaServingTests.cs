using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Server.Engine;
using PeftSharp.Tests.TestSupport;

namespace PeftSharp.Tests.Gemma;

/// <summary>The server's continuous-batching forward on gemma models: two sequences in one step (prefill, then one
/// decoded token each) give the last-row logits a single-sequence session gives — embedding scale, (1 + w) norms,
/// soft caps and windows included.</summary>
public class GemmaServingTests
{
    [Theory]
    [InlineData("gemma2", 3)]
    [InlineData("gemma3_text", 4)]
    public void Batched_step_equals_single_sequence_sessions(string type, int window)
    {
        var c = TinyModels.Config(type, tied: true) with { SlidingWindow = window };
        var w = TinyModels.Weights(c, 21);
        using var m = TinyModels.Build(c, w);
        var rng = new Random(3);
        int[] a = TinyModels.RandomIds(rng, 7, c.VocabSize), b = TinyModels.RandomIds(rng, 5, c.VocabSize);
        int V = c.VocabSize;
        float[] Session(int[] ids)
        {
            var last = new float[V];
            using var s = Passes.Session(m, 32);
            s.Feed(ids, last);
            return last;
        }
        using var ca = new KvCacheAttention(c, 32);
        using var cb = new KvCacheAttention(c, 32);
        using var fwd = new BatchForward(m, TestCompute.Cpu);
        float[][] logits = [new float[V], new float[V]];
        var whole = new[] { new RowSegment(0, a.Length + b.Length, null, null, null) };
        fwd.Run([.. a, .. b], [.. Enumerable.Range(0, a.Length), .. Enumerable.Range(0, b.Length)],
            [new SequenceRows(ca, 0, a.Length, 0), new SequenceRows(cb, a.Length, b.Length, 0)], whole, logits);
        Numerics.AssertClose(logits[0], Session(a).Select(x => (double)x).ToArray(), 1e-5, "prefill a");
        Numerics.AssertClose(logits[1], Session(b).Select(x => (double)x).ToArray(), 1e-5, "prefill b");
        // one decoded token each, at positions 7 and 5 (past the window)
        int na = 11, nb = 13;
        fwd.Run([na, nb], [a.Length, b.Length], [new SequenceRows(ca, 0, 1, a.Length), new SequenceRows(cb, 1, 1, b.Length)],
            [new RowSegment(0, 2, null, null, null)], logits);
        Numerics.AssertClose(logits[0], Session([.. a, na]).Select(x => (double)x).ToArray(), 1e-5, "decode a");
        Numerics.AssertClose(logits[1], Session([.. b, nb]).Select(x => (double)x).ToArray(), 1e-5, "decode b");
        foreach (var t in w.Values) t.Dispose();
    }
}
