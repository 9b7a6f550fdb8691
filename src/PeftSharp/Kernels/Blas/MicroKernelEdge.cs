namespace PeftSharp.Kernels.Blas;

/// <summary>Writes the valid mr×nr corner of a full register tile (already scaled by alpha) into C.</summary>
static unsafe class MicroKernelEdge
{
    // tile (MR, ldt) = alpha·acc; c (mr, nr) with leading dimension ldc
    public static void Store(float* tile, int ldt, float* c, long ldc, int mr, int nr, float beta)
    {
        for (int i = 0; i < mr; i++)
        {
            float* ci = c + i * ldc, ti = tile + i * ldt;
            if (beta == 0) for (int j = 0; j < nr; j++) ci[j] = ti[j];
            else if (beta == 1) for (int j = 0; j < nr; j++) ci[j] += ti[j];
            else for (int j = 0; j < nr; j++) ci[j] = ti[j] + beta * ci[j];
        }
    }
}
