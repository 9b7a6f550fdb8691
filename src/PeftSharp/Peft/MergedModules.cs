using PeftSharp.Models;
using PeftSharp.Nn;
using PeftSharp.Tensors;

namespace PeftSharp.Peft;

/// <summary>
/// An adapter's modules_to_save merged into its model, as PEFT's merge_and_unload leaves them: the trained copies
/// replace the embedding and LM head they stand for. A tied model stays tied only when one copy serves both
/// (ensure_weight_tying); otherwise the replaced module and the original other one are two matrices from now on.
/// Keeps what it replaced so an unmerge restores it; owns the copies it installed.
/// </summary>
internal sealed class MergedModules : IDisposable
{
    readonly (Tensor Embed, Tensor LmHead, bool Tied) _replaced;
    readonly List<Tensor> _copies;

    MergedModules((Tensor, Tensor, bool) replaced, List<Tensor> copies)
    {
        _replaced = replaced;
        _copies = copies;
    }

    /// <summary>Installs copies of the segment's embedding and LM head replacements in <paramref name="model"/>.</summary>
    public static MergedModules Apply(CausalLM model, in RowSegment route)
    {
        var copies = new List<Tensor>();
        Tensor? embed = route.Embed == null ? null : Copy(route.Embed.Value, copies);
        Tensor? head = route.LmHead == null ? null : ReferenceEquals(route.LmHead, route.Embed) ? embed : Copy(route.LmHead.Value, copies);
        // Tied afterwards only if nothing was replaced, or one copy replaced both.
        bool tied = model.Tied && ReferenceEquals(route.Embed, route.LmHead);
        var replaced = model.ReplaceEmbeddings(embed ?? model.Embed, head ?? model.LmHead, tied);
        return new MergedModules(replaced, copies);
    }

    static Tensor Copy(Tensor t, List<Tensor> copies)
    {
        var c = new Tensor(t.DType, t.Shape);
        unsafe { Buffer.MemoryCopy(t.Data, c.Data, c.ByteLength, t.ByteLength); }
        copies.Add(c);
        return c;
    }

    /// <summary>Puts the original embedding, LM head and tie back and frees the copies.</summary>
    public void Restore(CausalLM model)
    {
        model.ReplaceEmbeddings(_replaced.Embed, _replaced.LmHead, _replaced.Tied);
        Dispose();
    }

    public void Dispose()
    {
        foreach (var c in _copies) c.Dispose();
        _copies.Clear();
    }
}
