namespace PeftSharp.Inference;

/// <summary>
/// Chooses the next token from a row of logits (vocab). Semantics follow transformers' logits processors:
/// repetition penalty (CTRL: a seen token's logit is divided by the penalty if positive, multiplied if not; each
/// distinct token once), temperature, top-k (keeps every token tied with the k-th), top-p (the smallest set, by
/// descending probability, whose mass reaches p; always at least one token). Greedy ties go to the lowest id.
/// Not thread-safe: one sampler per generation stream; it reuses internal buffers across calls.
/// </summary>
internal sealed class Sampler
{
    readonly SamplingOptions _o;
    readonly Xoshiro256StarStar _rng;
    float[] _scores = [];   // (V) logits after the repetition penalty
    int[] _candidates = []; // kept token ids, in draw order
    double[] _weights = []; // unnormalized probability of each kept candidate
    ulong[] _sortKeys = []; // top-p ordering scratch
    int _count;
    double _mass;

    public Sampler(SamplingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _o = options;
        _rng = new Xoshiro256StarStar(options.Seed);
    }

    public SamplingOptions Options => _o;

    /// <summary>The next token id. <paramref name="context"/> is the sequence so far (prompt + generated), used only
    /// by the repetition penalty.</summary>
    public int Next(ReadOnlySpan<float> logits, ReadOnlySpan<int> context)
    {
        Prepare(logits, context);
        if (_o.IsGreedy) return Argmax();
        Filter();
        double u = _rng.NextDouble() * _mass;
        double cumulative = 0;
        for (int i = 0; i < _count; i++)
        {
            cumulative += _weights[i];
            if (u < cumulative) return _candidates[i];
        }
        // u·mass rounded up onto mass: take the last candidate that has any weight (underflowed tails have none).
        int last = _count - 1;
        while (last > 0 && _weights[last] == 0) last--;
        return _candidates[last];
    }

    /// <summary>The probability of every token under these options (what <see cref="Next"/> draws from), into
    /// <paramref name="probs"/> (V). Greedy gives a one-hot vector. Does not advance the generator.</summary>
    public void Distribution(ReadOnlySpan<float> logits, ReadOnlySpan<int> context, Span<double> probs)
    {
        if (probs.Length != logits.Length)
            throw new ArgumentException($"probs has {probs.Length} entries, logits {logits.Length}", nameof(probs));
        Prepare(logits, context);
        probs.Clear();
        if (_o.IsGreedy)
        {
            probs[Argmax()] = 1;
            return;
        }
        Filter();
        for (int i = 0; i < _count; i++) probs[_candidates[i]] = _weights[i] / _mass;
    }

    /// <summary>Copies logits into the scratch row, checks them, applies the repetition penalty.</summary>
    void Prepare(ReadOnlySpan<float> logits, ReadOnlySpan<int> context)
    {
        int v = logits.Length;
        if (v == 0) throw new PeftException("cannot sample from an empty logits row");
        if (_scores.Length != v)
        {
            _scores = new float[v];
            _candidates = new int[v];
            _weights = new double[v];
            _sortKeys = new ulong[v];
        }
        logits.CopyTo(_scores);
        for (int i = 0; i < v; i++)
            if (float.IsNaN(_scores[i]) || float.IsPositiveInfinity(_scores[i]))
                throw new PeftException($"logit of token {i} is {_scores[i]}: the model produced a non-finite value");

        if (_o.RepetitionPenalty != 1)
        {
            foreach (int t in context)
            {
                if ((uint)t >= (uint)v)
                    throw new PeftException($"context token id {t} is outside the vocabulary (0..{v - 1})");
                float l = logits[t]; // from the original row, so a token repeated in the context is penalized once
                _scores[t] = l > 0 ? l / _o.RepetitionPenalty : l * _o.RepetitionPenalty;
            }
        }
    }

    int Argmax()
    {
        int best = 0;
        for (int i = 1; i < _scores.Length; i++)
            if (_scores[i] > _scores[best]) best = i;
        if (float.IsNegativeInfinity(_scores[best])) throw new PeftException("every logit is -infinity: no token can be chosen");
        return best;
    }

    /// <summary>Fills candidates/weights with the tokens that survive top-k and top-p, weights = exp((s − max)/T).</summary>
    void Filter()
    {
        int v = _scores.Length;
        float max = float.NegativeInfinity;
        foreach (float s in _scores) if (s > max) max = s;
        if (float.IsNegativeInfinity(max)) throw new PeftException("every logit is -infinity: no token can be chosen");

        // top-k: keep scores ≥ the k-th largest (ties at the boundary stay, as in transformers).
        float threshold = _o.TopK > 0 && _o.TopK < v ? KthLargest(_o.TopK) : float.NegativeInfinity;
        _count = 0;
        for (int i = 0; i < v; i++)
            if (_scores[i] >= threshold && !float.IsNegativeInfinity(_scores[i])) _candidates[_count++] = i;

        // Temperature scales the differences, so large logits over a tiny temperature never overflow.
        double invT = 1.0 / _o.Temperature;
        _mass = 0;
        for (int i = 0; i < _count; i++)
        {
            double w = Math.Exp((_scores[_candidates[i]] - (double)max) * invT);
            _weights[i] = w;
            _mass += w;
        }

        if (_o.TopP < 1) KeepNucleus(max);
    }

    /// <summary>Keeps the shortest prefix, by descending probability (ties: lower id first), whose mass reaches top_p.
    /// Sorting 150k candidates costs tens of milliseconds, so only those within <c>delta</c> of the best logit are
    /// sorted, with delta widened until their mass reaches the target: the nucleus is always inside that set, and
    /// the kept prefix is the same as a full sort would give.</summary>
    void KeepNucleus(float max)
    {
        double target = _o.TopP * _mass;
        int m;
        for (double delta = 16.0 * _o.Temperature; ; delta *= 2)
        {
            m = PartitionWithin(max, delta, out double subsetMass);
            if (subsetMass >= target || m == _count) break;
        }
        // Rounding can leave the prefix sum of the subset a hair below its unordered sum: then sort everything.
        if (!KeepPrefix(m, max, target) && m < _count) KeepPrefix(_count, max, target);
    }

    /// <summary>Moves candidates with score ≥ max − delta to the front; returns their count and mass.</summary>
    int PartitionWithin(float max, double delta, out double mass)
    {
        double invT = 1.0 / _o.Temperature;
        int m = 0;
        mass = 0;
        for (int i = 0; i < _count; i++)
        {
            int id = _candidates[i];
            double d = _scores[id] - (double)max;
            if (d < -delta) continue;
            mass += Math.Exp(d * invT);
            (_candidates[i], _candidates[m]) = (_candidates[m], id);
            m++;
        }
        return m;
    }

    /// <summary>Sorts the first m candidates and keeps the prefix reaching target; false if all m fall short.</summary>
    bool KeepPrefix(int m, float max, double target)
    {
        var ids = _candidates.AsSpan(0, m);
        // One u64 key per candidate: descending score in the high half, ascending id in the low half, so a plain
        // primitive sort (several times faster than a comparison delegate) gives the order.
        var keys = _sortKeys.AsSpan(0, m);
        for (int i = 0; i < m; i++) keys[i] = ((ulong)~OrderedBits(_scores[ids[i]]) << 32) | (uint)ids[i];
        keys.Sort();
        for (int i = 0; i < m; i++) ids[i] = (int)(uint)keys[i];
        double invT = 1.0 / _o.Temperature;
        double cumulative = 0;
        int keep = 0;
        while (keep < m && (keep == 0 || cumulative < target))
        {
            double w = Math.Exp((_scores[ids[keep]] - (double)max) * invT);
            _weights[keep] = w;
            cumulative += w;
            keep++;
        }
        _count = keep;
        _mass = cumulative;
        return cumulative >= target || keep < m;
    }

    /// <summary>Float bits mapped so that unsigned integer order is float order (finite values and −∞).</summary>
    static uint OrderedBits(float f)
    {
        uint b = BitConverter.SingleToUInt32Bits(f);
        return (b & 0x8000_0000) != 0 ? ~b : b | 0x8000_0000;
    }

    /// <summary>The k-th largest score (1-based), by a min-heap of size k: O(V log k).</summary>
    float KthLargest(int k)
    {
        var heap = new PriorityQueue<float, float>(k);
        foreach (float s in _scores)
        {
            if (heap.Count < k) heap.Enqueue(s, s);
            else if (s > heap.Peek()) heap.EnqueueDequeue(s, s);
        }
        return heap.Peek();
    }
}
