namespace PeftSharp.Kernels.Reference;

/// <summary>Naive float64 embedding lookup, the yardstick for <see cref="Embedding"/>.</summary>
internal static class EmbeddingReference
{
    // out (N,C) = w[ids[i], :], w (V,C)
    public static double[] Forward(double[] w, int c, int[] ids)
    {
        var o = new double[ids.Length * c];
        for (int i = 0; i < ids.Length; i++)
            for (int j = 0; j < c; j++) o[i * c + j] = w[ids[i] * c + j];
        return o;
    }

    // dw (V,C) = Σ_i onehot(ids[i]) ⊗ dout[i,:]
    public static double[] Backward(double[] dout, int[] ids, int vocab, int c)
    {
        var dw = new double[vocab * c];
        for (int i = 0; i < ids.Length; i++)
            for (int j = 0; j < c; j++) dw[ids[i] * c + j] += dout[i * c + j];
        return dw;
    }
}
