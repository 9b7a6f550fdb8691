using PeftSharp.Compute;
using PeftSharp.Kernels;
using PeftSharp.Quantization;
using PeftSharp.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace PeftSharp.Optim;

/// <summary>
/// bitsandbytes' AdamW8bit (reference §6.1): m and v stored as 8-bit codes in blocks of 256 with a float32 absmax per
/// block, m against the signed dynamic map and v against the unsigned one. Tensors with fewer than
/// <see cref="MinSize8Bit"/> elements keep float32 states and use the 32-bit kernel (<see cref="Adam32Kernel"/>).
/// Per element of the 8-bit path (kOptimizerStatic8bit2StateBlockwise):
/// if g is finite: v = β2·deq(v) + (1−β2)·g·g, m = β1·deq(m) + (1−β1)·g; else m = v = 0 and the parameter is left as is;
/// p += −lr·√(1−β2^t)/(1−β1^t) · m/(√v + ε·√(1−β2^t)); then p *= 1 − lr·wd;
/// new absmax per block = max |m|, max |v|; codes = nearest map entries of m/absmax, v/absmax; if the sign of the
/// chosen m code differs from the sign of m, the code moves one step toward m's sign.
/// Blocks are independent, so the multi-threaded update is deterministic. A block whose new absmax is 0 stores the
/// code of 0.0 (CUDA would divide 0 by 0 there; the dequantized state is 0 either way).
/// </summary>
internal sealed class AdamW8bit : Optimizer
{
    public const int BlockSize = 256;
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.999f;
    public float Eps { get; init; } = 1e-8f;
    public float WeightDecay { get; init; } = 0.01f;
    /// <summary>bitsandbytes' min_8bit_size: smaller tensors keep float32 states.</summary>
    public int MinSize8Bit { get; init; } = 4096;

    sealed class State8
    {
        public required byte[] Q1, Q2;
        public required float[] Absmax1, Absmax2;
    }

    readonly Dictionary<int, (float[] m, float[] v)> _state32 = [];
    readonly Dictionary<int, State8> _state8 = [];

    /// <summary>8-bit AdamW running its block updates on <paramref name="context"/>.</summary>
    public AdamW8bit(ComputeContext context) : base(context) { }
    public override long StateBytes =>
        _state32.Values.Sum(s => 4L * (s.m.Length + s.v.Length))
        + _state8.Values.Sum(s => (long)s.Q1.Length + s.Q2.Length + 4L * (s.Absmax1.Length + s.Absmax2.Length));

    static readonly float[] Map1 = DynamicMap.Signed;
    static readonly float[] Map2 = DynamicMap.Unsigned;

    public override void Step(int paramIndex, Span<float> value, ReadOnlySpan<float> grad, float lr)
    {
        CheckStep(paramIndex, value.Length, grad.Length);
        int n = value.Length;
        if (n < MinSize8Bit)
        {
            if (!_state32.TryGetValue(paramIndex, out var s))
                _state32[paramIndex] = s = (new float[n], new float[n]);
            else if (s.m.Length != n) throw Mismatch(paramIndex, n, s.m.Length);
            Adam32Kernel.Update(value, grad, s.m, s.v, lr, Beta1, Beta2, Eps, WeightDecay, StepCount);
            return;
        }
        if (!_state8.TryGetValue(paramIndex, out var st))
        {
            int nb = Blockwise8.BlockCount(n, BlockSize);
            // bitsandbytes starts from zero codes with zero absmax (state dequantizes to 0)
            _state8[paramIndex] = st = new State8 { Q1 = new byte[n], Q2 = new byte[n], Absmax1 = new float[nb], Absmax2 = new float[nb] };
        }
        else if (st.Q1.Length != n) throw Mismatch(paramIndex, n, st.Q1.Length);
        Update8bit(value, grad, st, lr);
    }

    static PeftException Mismatch(int i, int n, int have)
        => new($"optimizer parameter {i}: has {n} elements, its state has {have}");

    unsafe void Update8bit(Span<float> value, ReadOnlySpan<float> grad, State8 st, float lr)
    {
        int n = value.Length;
        int t = StepCount;
        float beta1 = Beta1, beta2 = Beta2, eps = Eps, wd = WeightDecay;
        float correction1 = 1f - MathF.Pow(beta1, t);
        float correction2 = MathF.Sqrt(1f - MathF.Pow(beta2, t));
        float stepSize = -lr * correction2 / correction1;
        float decay = 1f - lr * wd;
        int nBlocks = st.Absmax1.Length;
        fixed (float* pp = value)
        fixed (float* pg = grad)
        {
            float* p = pp, g = pg;
            Context.For(nBlocks, (b0, b1) =>
            {
                Span<float> s1 = stackalloc float[BlockSize];
                Span<float> s2 = stackalloc float[BlockSize];
                for (int b = b0; b < b1; b++)
                {
                    int start = b * BlockSize, len = Math.Min(BlockSize, n - start);
                    float a1 = st.Absmax1[b], a2 = st.Absmax2[b];
                    float max1 = 0f, max2 = 0f;
                    int j0 = Context.UseAvx2 ? UpdateMomentsAvx2(g + start, st.Q1.AsSpan(start, len), st.Q2.AsSpan(start, len), a1, a2,
                        beta1, beta2, s1, s2, ref max1, ref max2) : 0;
                    for (int j = j0; j < len; j++)
                    {
                        int e = start + j;
                        float gv = g[e];
                        if (float.IsFinite(gv))
                        {
                            s2[j] = Map2[st.Q2[e]] * a2 * beta2 + (1f - beta2) * gv * gv;
                            s1[j] = Map1[st.Q1[e]] * a1 * beta1 + (1f - beta1) * gv;
                        }
                        else { s1[j] = 0f; s2[j] = 0f; }
                        max1 = MathF.Max(max1, MathF.Abs(s1[j]));
                        max2 = MathF.Max(max2, MathF.Abs(s2[j]));
                    }
                    st.Absmax1[b] = max1;
                    st.Absmax2[b] = max2;
                    j0 = Context.UseAvx2 ? UpdateParamsAvx2(p + start, g + start, s1, s2, len, stepSize, correction2 * eps, wd > 0f, decay) : 0;
                    for (int j = j0; j < len; j++)
                    {
                        int e = start + j;
                        if (!float.IsFinite(g[e])) continue;
                        p[e] = p[e] + stepSize * (s1[j] / (MathF.Sqrt(s2[j]) + correction2 * eps));
                        if (wd > 0f) p[e] *= decay;
                    }
                    Requantize(Context.UseAvx2, s1[..len], s2[..len], max1, max2, st.Q1.AsSpan(start, len), st.Q2.AsSpan(start, len));
                }
            }, minPerThread: 64);
        }
    }


    /// <summary>New codes of one block: nearest map entries of m/max1 and v/max2 (0 when the block max is 0), with m's code
    /// moved one step toward m's sign when the chosen entry has the other sign.</summary>
    internal static unsafe void Requantize(bool avx2, ReadOnlySpan<float> s1, ReadOnlySpan<float> s2, float max1, float max2, Span<byte> q1, Span<byte> q2)
    {
        int j = 0;
        if (avx2)
        {
            fixed (float* m1 = Map1, m2 = Map2, p1 = s1, p2 = s2)
            fixed (byte* o1 = q1, o2 = q2)
            {
                var inv1 = Vector256.Create(max1);
                var inv2 = Vector256.Create(max2);
                var zero = Vector256<float>.Zero;
                bool z1 = max1 > 0f, z2 = max2 > 0f;
                for (; j + 8 <= s1.Length; j += 8)
                {
                    var a = Vector256.Load(p1 + j);
                    var b = Vector256.Load(p2 + j);
                    var c1 = DynamicMap.NearestAvx2(m1, z1 ? a / inv1 : zero);
                    var c2 = DynamicMap.NearestAvx2(m2, z2 ? b / inv2 : zero);
                    // sign fix: where sign(map1[c1]) != sign(m): c1 += m > 0 ? 1 : −1 (byte wrap-around as in CUDA)
                    var code1 = Avx2.GatherVector256(m1, c1, 4);
                    var differ = Vector256.ShiftRightArithmetic((code1.AsInt32() ^ a.AsInt32()), 31);
                    var dir = Vector256.ConditionalSelect(Vector256.GreaterThan(a, zero).AsInt32(), Vector256.Create(1), Vector256.Create(-1));
                    c1 = (c1 + (dir & differ)) & Vector256.Create(0xFF);
                    StoreBytes(c1, o1 + j);
                    StoreBytes(c2, o2 + j);
                }
            }
        }
        for (; j < s1.Length; j++)
        {
            byte c1 = DynamicMap.Nearest(Map1, max1 > 0f ? s1[j] / max1 : 0f);
            if (float.IsNegative(Map1[c1]) != float.IsNegative(s1[j]))
                c1 = (byte)(s1[j] > 0f ? c1 + 1 : c1 - 1); // keep the sign of m
            q1[j] = c1;
            q2[j] = DynamicMap.Nearest(Map2, max2 > 0f ? s2[j] / max2 : 0f);
        }
    }

    // g (len), codes q1/q2 (len) -> s1, s2 (len): the moment updates of loop 1, 8 lanes at a time, same operation order
    // as the scalar loop. Returns how many elements were done (a multiple of 8).
    static unsafe int UpdateMomentsAvx2(float* g, ReadOnlySpan<byte> q1, ReadOnlySpan<byte> q2, float a1, float a2,
        float beta1, float beta2, Span<float> s1, Span<float> s2, ref float max1, ref float max2)
    {
        int len = q1.Length, j = 0;
        var vb1 = Vector256.Create(beta1); var vb2 = Vector256.Create(beta2);
        var w1 = Vector256.Create(1f - beta1); var w2 = Vector256.Create(1f - beta2);
        var va1 = Vector256.Create(a1); var va2 = Vector256.Create(a2);
        var expMask = Vector256.Create(0x7F800000);
        var m1 = Vector256<float>.Zero; var m2 = Vector256<float>.Zero;
        fixed (float* map1 = Map1, map2 = Map2, o1 = s1, o2 = s2)
        fixed (byte* c1p = q1, c2p = q2)
        {
            for (; j + 8 <= len; j += 8)
            {
                var gv = Vector256.Load(g + j);
                var finite = ~Vector256.Equals(gv.AsInt32() & expMask, expMask);
                var d2 = Avx2.GatherVector256(map2, Avx2.ConvertToVector256Int32(c2p + j), 4) * va2;
                var d1 = Avx2.GatherVector256(map1, Avx2.ConvertToVector256Int32(c1p + j), 4) * va1;
                var n2 = d2 * vb2 + w2 * gv * gv;
                var n1 = d1 * vb1 + w1 * gv;
                n2 = (n2.AsInt32() & finite).AsSingle();
                n1 = (n1.AsInt32() & finite).AsSingle();
                n1.Store(o1 + j);
                n2.Store(o2 + j);
                m1 = Vector256.Max(m1, Vector256.Abs(n1));
                m2 = Vector256.Max(m2, Vector256.Abs(n2));
            }
        }
        for (int k = 0; k < 8; k++) { max1 = MathF.Max(max1, m1[k]); max2 = MathF.Max(max2, m2[k]); }
        return j;
    }

    // p (len) += stepSize · s1 / (√s2 + eps·√(1−β2^t)), then decay; lanes with a non-finite g keep p. Returns elements done.
    static unsafe int UpdateParamsAvx2(float* p, float* g, ReadOnlySpan<float> s1, ReadOnlySpan<float> s2, int len,
        float stepSize, float epsC2, bool decayOn, float decay)
    {
        int j = 0;
        var vStep = Vector256.Create(stepSize); var vEps = Vector256.Create(epsC2); var vDecay = Vector256.Create(decay);
        var expMask = Vector256.Create(0x7F800000);
        fixed (float* a = s1, b = s2)
            for (; j + 8 <= len; j += 8)
            {
                var pv = Vector256.Load(p + j);
                var finite = ~Vector256.Equals(Vector256.Load(g + j).AsInt32() & expMask, expMask);
                var np = pv + vStep * (Vector256.Load(a + j) / (Vector256.Sqrt(Vector256.Load(b + j)) + vEps));
                if (decayOn) np *= vDecay;
                Vector256.ConditionalSelect(finite.AsSingle(), np, pv).Store(p + j);
            }
        return j;
    }

    // 8 int32 lanes in 0..255 → 8 bytes
    static unsafe void StoreBytes(Vector256<int> c, byte* dst)
    {
        var w16 = Sse2.PackSignedSaturate(c.GetLower(), c.GetUpper());
        var b8 = Sse2.PackUnsignedSaturate(w16, w16);
        *(ulong*)dst = b8.AsUInt64().ToScalar();
    }

    /// <summary>True if parameter i keeps 8-bit states.</summary>
    public bool Is8Bit(int paramIndex) => _state8.ContainsKey(paramIndex);

    /// <summary>The dequantized states (m, v) of parameter i (copies), or null before its first step.</summary>
    public (float[] m, float[] v)? DequantizedState(int paramIndex)
    {
        if (_state32.TryGetValue(paramIndex, out var s)) return ((float[])s.m.Clone(), (float[])s.v.Clone());
        if (!_state8.TryGetValue(paramIndex, out var st)) return null;
        var m = new float[st.Q1.Length];
        var v = new float[st.Q1.Length];
        Blockwise8.Dequantize(st.Q1, st.Absmax1, BlockSize, Map1, m);
        Blockwise8.Dequantize(st.Q2, st.Absmax2, BlockSize, Map2, v);
        return (m, v);
    }

    /// <summary>State tensors with bitsandbytes' names: "{i}.state1"/"{i}.state2" (U8 codes, or F32 below the 8-bit
    /// threshold) and "{i}.absmax1"/"{i}.absmax2" (F32, 8-bit only); the maps are fixed and not stored.</summary>
    public override Dictionary<string, Tensor> SaveState()
    {
        var d = new Dictionary<string, Tensor> { ["step"] = StepTensor(StepCount) };
        foreach (var (i, (m, v)) in _state32)
        {
            d[$"{i}.state1"] = FloatTensor(m);
            d[$"{i}.state2"] = FloatTensor(v);
        }
        foreach (var (i, st) in _state8)
        {
            d[$"{i}.state1"] = ByteTensor(st.Q1);
            d[$"{i}.state2"] = ByteTensor(st.Q2);
            d[$"{i}.absmax1"] = FloatTensor(st.Absmax1);
            d[$"{i}.absmax2"] = FloatTensor(st.Absmax2);
        }
        return d;
    }

    public override void LoadState(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        int step = ReadStep(state, source);
        var s32 = new Dictionary<int, (float[], float[])>();
        var s8 = new Dictionary<int, State8>();
        foreach (int i in ParamIndices(state, source))
        {
            if (!state.TryGetValue($"{i}.state1", out var t1)) throw new PeftException($"{source}: optimizer state is missing '{i}.state1'");
            if (t1.DType == DType.F32)
            {
                var m = t1.Floats.ToArray();
                var v = Get(state, $"{i}.state2", DType.F32, source).Floats.ToArray();
                if (m.Length != v.Length || m.Length >= MinSize8Bit)
                    throw new PeftException($"{source}: float32 optimizer state of parameter {i} has {m.Length}/{v.Length} elements (expected equal and below {MinSize8Bit})");
                s32[i] = (m, v);
            }
            else if (t1.DType == DType.U8)
            {
                var q1 = t1.Span<byte>().ToArray();
                var q2 = Get(state, $"{i}.state2", DType.U8, source).Span<byte>().ToArray();
                var a1 = Get(state, $"{i}.absmax1", DType.F32, source).Floats.ToArray();
                var a2 = Get(state, $"{i}.absmax2", DType.F32, source).Floats.ToArray();
                int nb = Blockwise8.BlockCount(q1.Length, BlockSize);
                if (q2.Length != q1.Length || a1.Length != nb || a2.Length != nb || q1.Length < MinSize8Bit)
                    throw new PeftException($"{source}: 8-bit optimizer state of parameter {i} has inconsistent sizes (codes {q1.Length}/{q2.Length}, absmax {a1.Length}/{a2.Length}, expected {nb} blocks)");
                s8[i] = new State8 { Q1 = q1, Q2 = q2, Absmax1 = a1, Absmax2 = a2 };
            }
            else throw new PeftException($"{source}: optimizer state '{i}.state1' is {t1.DType}, expected U8 or F32");
        }
        _state32.Clear();
        _state8.Clear();
        foreach (var kv in s32) _state32[kv.Key] = kv.Value;
        foreach (var kv in s8) _state8[kv.Key] = kv.Value;
        StepCount = step;
    }
}
