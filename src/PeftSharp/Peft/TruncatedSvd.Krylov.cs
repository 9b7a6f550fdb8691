using PeftSharp.Compute;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace PeftSharp.Peft;

/// <summary>How a <see cref="TruncatedSvd.Krylov"/> run ended.</summary>
/// <param name="Basis">Size of the final Krylov basis (the Rayleigh–Ritz space).</param>
/// <param name="Blocks">Block steps, i.e. products with W and Wᵀ of one block each.</param>
/// <param name="MaxRelativeResidual">max over the k kept pairs of ‖A·v − θ·v‖ / θ₁, A the smaller Gram matrix.</param>
internal sealed record KrylovStats(int Basis, int Blocks, double MaxRelativeResidual);

internal static partial class TruncatedSvd
{
    /// <summary>Stopping tolerance of <see cref="Krylov"/> in LoftQ: every kept θ = σ² is within 1e-9·σ₁² of an
    /// eigenvalue of the Gram matrix, far below float32's resolution of the weights.</summary>
    public const double KrylovTolerance = 1e-9;

    /// <summary>
    /// Top-k SVD by block Lanczos with full re-orthogonalization and Rayleigh–Ritz, in float64, run until the kept
    /// Ritz pairs are accurate to <paramref name="tolerance"/>. A = X·Xᵀ is the smaller Gram matrix (W·Wᵀ or Wᵀ·W, as in
    /// <see cref="Exact"/>), never formed: A·V = X·(Xᵀ·V). The basis V is the block Krylov space of a seeded Gaussian
    /// start block, orthonormalized twice against everything before it; T = Vᵀ·A·V comes from the stored products, and
    /// the Ritz pairs (θ, v = V·y) of T's top k eigenpairs are checked by their true residuals r = A·v − θ·v, from
    /// the stored A·V. It stops when every ‖r‖ ≤ tolerance·θ₁, or when V spans the whole space (then it is exact).
    /// Guarantees: θᵢ ≤ λᵢ (Cauchy interlacing), so the captured energy Σσᵢ² never exceeds the optimum, and each θᵢ lies
    /// within ‖rᵢ‖ ≤ tolerance·θ₁ of an eigenvalue of A (Kahan's bound for Rayleigh–Ritz). Those eigenvalues are the
    /// top k unless the start block was (numerically) orthogonal to a leading eigenvector, which a Gaussian block is
    /// not; then Σσᵢ² is within k·tolerance·σ₁² of the optimum. Unlike subspace iteration, whose rate is σ_{k+1}/σ_k
    /// per step and stalls on the flat spectrum of a noise-like residual, the Krylov space's Chebyshev polynomials
    /// separate a cluster with relative gap γ in O(log(1/tolerance)/√γ) steps.
    /// </summary>
    public static SvdResult Krylov(ComputeContext ctx, ReadOnlySpan<double> w, int rows, int cols, int k,
        double tolerance = KrylovTolerance, int blockSize = 0, int seed = 0x10F7)
        => KrylovWithStats(ctx, w, rows, cols, k, tolerance, blockSize, seed).Svd;

    /// <summary><see cref="Krylov"/> with how it ended.</summary>
    public static (SvdResult Svd, KrylovStats Stats) KrylovWithStats(ComputeContext ctx, ReadOnlySpan<double> w, int rows, int cols, int k,
        double tolerance = KrylovTolerance, int blockSize = 0, int seed = 0x10F7)
    {
        Check(w, rows, cols, k);
        if (!(tolerance > 0) || !double.IsFinite(tolerance)) throw new ArgumentOutOfRangeException(nameof(tolerance), $"tolerance must be finite and > 0, got {tolerance}");
        bool wide = rows <= cols;
        int n = wide ? rows : cols, len = wide ? cols : rows;
        var x = wide ? w.ToArray() : Transpose(w, rows, cols);    // (n, len): A = X·Xᵀ
        var xt = wide ? Transpose(w, rows, cols) : w.ToArray();   // (len, n)
        int b = Math.Min(n, blockSize > 0 ? blockSize : DefaultBlock(k));
        var rng = new Random(seed);
        var basis = new List<double[]>();   // v_j (n), orthonormal
        var av = new List<double[]>();      // A·v_j (n)
        var xtv = new List<double[]>();     // Xᵀ·v_j (len): the other side's vectors
        var coef = new List<double[]>();    // coef[j][i] = v_i·(A·v_j) for every i in the basis when v_j's block was multiplied
        var pending = new List<double[]>();
        for (int j = 0; j < b; j++) pending.Add(RandomVector(rng, n));
        int blocks = 0, nextCheck = k;
        while (true)
        {
            int start = basis.Count;
            AppendOrthonormal(ctx, basis, pending, rng, n, Math.Min(b, n - start));
            int bb = basis.Count - start;
            MultiplyBlock(ctx, x, xt, n, len, basis, start, bb, av, xtv);
            // T's new columns: v_i·(A·v_j) for the whole basis, which is also the first Gram–Schmidt pass of A·v_j.
            var block = av.GetRange(start, bb);
            coef.AddRange(Dots(ctx, basis, block));
            blocks++;
            int m = basis.Count;
            if (m >= nextCheck || m == n)
            {
                var (theta, y) = RayleighRitz(coef, m);
                double worst = 0;
                var vy = new double[n];
                var ay = new double[n];
                for (int i = 0; i < k; i++)
                {
                    Combine(basis, y, i * m, m, vy);
                    Combine(av, y, i * m, m, ay);
                    TensorPrimitives.MultiplyAdd(vy, -theta[i], ay, ay);
                    worst = Math.Max(worst, Math.Sqrt(TensorPrimitives.Dot(ay, ay)));
                }
                double top = Math.Max(theta[0], 0);
                if (worst <= tolerance * top || m == n)
                    return (Assemble(basis, xtv, theta, y, m, k, n, len, wide, rows, cols),
                        new KrylovStats(m, blocks, top > 0 ? worst / top : worst));
                nextCheck = m + BlocksUntilNextCheck(m, n, len, b) * b;
            }
            // The next block: A·v_j of this block with the basis projected out (first pass from the coefficients).
            pending = new List<double[]>(bb);
            for (int j = 0; j < bb; j++) pending.Add((double[])block[j].Clone());
            SubtractProjections(ctx, basis, pending, coef.GetRange(start, bb));
        }
    }

    /// <summary>
    /// Block steps until the next convergence check: the check's full eigen-decomposition of T (tred2/tql2 with
    /// vectors, costed as 30·m³, as measured against the block products here) is paid for by that many block steps
    /// (4·n·len·b + 4·m·n·b flops each), so checks cost about as much as the steps between them, and the basis ends at
    /// most a quarter (in practice a few percent) larger than needed. A cost model, not a clock, so the result is
    /// deterministic. (Measured on LoftQ residuals of 2048-wide noise: b = 16 beats 8, 32 and 48; wider blocks need a
    /// larger basis for the same polynomial degree.)
    /// </summary>
    static int BlocksUntilNextCheck(int m, int n, int len, int b)
    {
        double eigen = 30.0 * m * m * m, step = 4.0 * n * len * b + 4.0 * m * n * b;
        return (int)Math.Clamp(Math.Ceiling(eigen / step), 1, 1 + m / (4 * b));
    }

    /// <summary>The block: k rounded up to a multiple of 8 (the product's vector width), at least 16. Wider blocks than k
    /// let the top k converge against the gap to σ_{b+1}, not σ_{k+1}.</summary>
    static int DefaultBlock(int k) => Math.Max(16, (k + 7) / 8 * 8);

    static double[] RandomVector(Random rng, int n)
    {
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = Gaussian(rng);
        return v;
    }

    /// <summary>c[j][i] = basis_i·q_j for every candidate j, each candidate on one thread (the basis is read once per
    /// thread, the candidates stay in cache).</summary>
    static List<double[]> Dots(ComputeContext ctx, List<double[]> basis, List<double[]> q)
    {
        var c = new double[q.Count][];
        ctx.For(q.Count, (s, e) =>
        {
            for (int j = s; j < e; j++) c[j] = new double[basis.Count];
            for (int i = 0; i < basis.Count; i++)
                for (int j = s; j < e; j++) c[j][i] = TensorPrimitives.Dot(basis[i], q[j]);
        });
        return c.ToList();
    }

    /// <summary>q_j −= Σ_i c[j][i]·basis_i (one classical Gram–Schmidt pass, coefficients given).</summary>
    static void SubtractProjections(ComputeContext ctx, List<double[]> basis, List<double[]> q, List<double[]> c)
    {
        if (q.Count == 0) return;
        ctx.For(q.Count, (s, e) =>
        {
            for (int i = 0; i < c[s].Length && i < basis.Count; i++)
                for (int j = s; j < e; j++) TensorPrimitives.MultiplyAdd(basis[i], -c[j][i], q[j], q[j]);
        });
    }

    /// <summary>
    /// Appends up to <paramref name="count"/> of the candidates to the basis, orthonormalized. The caller has projected
    /// the basis out once; here a second blocked classical Gram–Schmidt pass follows ("twice is enough"), then modified
    /// Gram–Schmidt against the block's own new vectors, twice. Whenever a pass leaves less than 1/√2 of the norm (the
    /// Daniel–Gragg–Kaufman–Stewart test for cancellation) the vector gets another full pass, up to 4. A candidate that
    /// vanishes (the Krylov space is an invariant subspace: rank deficiency, or the whole space) is replaced by a fresh
    /// Gaussian vector treated the same way, so the basis keeps growing until it spans ℝⁿ.
    /// </summary>
    static void AppendOrthonormal(ComputeContext ctx, List<double[]> basis, List<double[]> candidates, Random rng, int n, int count)
    {
        const double eta = 0.7071067811865476;
        var firstPass = candidates.Select(q => Norm(q)).ToArray();
        if (basis.Count > 0) SubtractProjections(ctx, basis, candidates, Dots(ctx, basis, candidates));
        int fixedCount = basis.Count, added = 0;
        for (int c = 0; added < count; c++)
        {
            bool fresh = c >= candidates.Count;
            var q = fresh ? RandomVector(rng, n) : candidates[c];
            double before = fresh ? Norm(q) : firstPass[c];
            if (fresh)
            {
                Project(q, basis, 0, fixedCount);
                before = Norm(q);
                Project(q, basis, 0, fixedCount);
            }
            double norm = Norm(q);
            bool again = norm < eta * before;
            Project(q, basis, fixedCount, basis.Count);
            double mid = Norm(q);
            Project(q, basis, fixedCount, basis.Count);
            double after = Norm(q);
            again |= mid < eta * norm || after < eta * mid;
            for (int extra = 0; again && extra < 2 && after > 0; extra++)
            {
                Project(q, basis, 0, basis.Count);
                double next = Norm(q);
                again = next < eta * after;
                after = next;
            }
            if (again || !(after > 0)) continue;   // no stable direction left: the next candidate, or a random one
            TensorPrimitives.Multiply(q, 1 / after, q);
            basis.Add(q);
            added++;
        }
    }

    static double Norm(double[] v) => Math.Sqrt(TensorPrimitives.Dot(v, v));

    /// <summary>q −= (q·v_i)·v_i for i in [from, to), one at a time (modified Gram–Schmidt).</summary>
    static void Project(double[] q, List<double[]> basis, int from, int to)
    {
        for (int i = from; i < to; i++) TensorPrimitives.MultiplyAdd(basis[i], -TensorPrimitives.Dot(q, basis[i]), q, q);
    }

    /// <summary>av, xtv += A·v_j, Xᵀ·v_j for the basis vectors start … start+count, through two block products.</summary>
    static void MultiplyBlock(ComputeContext ctx, double[] x, double[] xt, int n, int len, List<double[]> basis, int start, int count,
        List<double[]> av, List<double[]> xtv)
    {
        int bp = (count + 7) / 8 * 8;
        var vb = new double[n * bp];
        for (int j = 0; j < count; j++)
        {
            var v = basis[start + j];
            for (int i = 0; i < n; i++) vb[i * bp + j] = v[i];
        }
        var pb = new double[len * bp];
        BlockProduct64.Multiply(ctx, xt, len, n, vb, bp, pb);
        var zb = new double[n * bp];
        BlockProduct64.Multiply(ctx, x, n, len, pb, bp, zb);
        for (int j = 0; j < count; j++)
        {
            var p = new double[len];
            for (int i = 0; i < len; i++) p[i] = pb[i * bp + j];
            var z = new double[n];
            for (int i = 0; i < n; i++) z[i] = zb[i * bp + j];
            xtv.Add(p);
            av.Add(z);
        }
    }

    /// <summary>T = Vᵀ·A·V (symmetrized) and its eigenpairs, descending; y row i = eigenvector i.</summary>
    static (double[] Values, double[] Vectors) RayleighRitz(List<double[]> coef, int m)
    {
        var t = new double[m * m];
        for (int j = 0; j < m; j++)
            for (int i = 0; i <= j; i++)
            {
                double upper = coef[j][i];
                double lower = coef[i].Length > j ? coef[i][j] : upper;
                t[i * m + j] = t[j * m + i] = 0.5 * (upper + lower);
            }
        return SymmetricEigen.Decompose(t, m);
    }

    /// <summary>dst = Σ_j y[offset + j]·vectors[j].</summary>
    static void Combine(List<double[]> vectors, double[] y, int offset, int m, double[] dst)
    {
        Array.Clear(dst);
        for (int j = 0; j < m; j++)
        {
            double c = y[offset + j];
            if (c != 0) TensorPrimitives.MultiplyAdd(vectors[j], c, dst, dst);
        }
    }

    static SvdResult Assemble(List<double[]> basis, List<double[]> xtv, double[] theta, double[] y, int m, int k, int n, int len,
        bool wide, int rows, int cols)
    {
        var s = new double[k];
        var small = new double[k * n];
        var other = new double[k * len];
        var tmpN = new double[n];
        var tmpL = new double[len];
        for (int i = 0; i < k; i++)
        {
            s[i] = Math.Sqrt(Math.Max(theta[i], 0));
            Combine(basis, y, i * m, m, tmpN);
            tmpN.CopyTo(small, i * n);
            Combine(xtv, y, i * m, m, tmpL);   // Xᵀ·v = σ·u
            tmpL.CopyTo(other, i * len);
        }
        OrthonormalizeRows(other, k, len, s);
        CanonicalSigns(small, other, k, n, len);
        return wide
            ? new SvdResult(Transpose(small, k, n), s, other, rows, cols, k)
            : new SvdResult(Transpose(other, k, len), s, small, rows, cols, k);
    }
}
