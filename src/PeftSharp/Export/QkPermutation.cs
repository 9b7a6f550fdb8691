namespace PeftSharp.Export;

/// <summary>
/// The row order change between Hugging Face's half-split RoPE and llama.cpp's adjacent-pair RoPE for q_proj/k_proj
/// (convert_hf_to_gguf's LlamaModel.permute): within each head of D rows, HF row j·D/2 + i becomes GGUF row 2i + j.
/// </summary>
internal static class QkPermutation
{
    /// <summary>The HF row stored at GGUF row <paramref name="ggufRow"/> of a head of <paramref name="headDim"/> rows.</summary>
    public static int HfRowOf(int ggufRow, int headDim)
    {
        int head = ggufRow / headDim, local = ggufRow % headDim;
        return head * headDim + (local % 2) * (headDim / 2) + local / 2;
    }

    /// <summary>Rows of whole heads, HF order → GGUF order (<paramref name="rows"/> a multiple of headDim).</summary>
    public static void ToGguf(ReadOnlySpan<float> hf, Span<float> gguf, int rows, int cols, int headDim)
    {
        for (int r = 0; r < rows; r++) hf.Slice(HfRowOf(r, headDim) * cols, cols).CopyTo(gguf.Slice(r * cols, cols));
    }

    /// <summary>GGUF order → HF order.</summary>
    public static void ToHf(ReadOnlySpan<float> gguf, Span<float> hf, int rows, int cols, int headDim)
    {
        for (int r = 0; r < rows; r++) gguf.Slice(r * cols, cols).CopyTo(hf.Slice(HfRowOf(r, headDim) * cols, cols));
    }
}
