using PeftSharp.Models;
using PeftSharp.Compute;
using PeftSharp.Inference;
using PeftSharp.Peft;

namespace PeftSharp.Server.Engine;

/// <summary>
/// Serves generation requests over one loaded model and its adapters with continuous batching: a scheduler thread
/// runs one step after another, each step feeding every sequence in flight together — the whole prompt of a sequence
/// that joins (prefill), one token of each that decodes — with rows grouped by adapter, so the base projections run
/// once over all rows and each adapter over its own (S-LoRA style). Sequences join and leave at every step.
/// Adapters load and unload at run time; an unload waits for the requests that use the adapter.
/// </summary>
public sealed class ServeEngine : IDisposable
{
    readonly PeftModel _pm;
    readonly EngineOptions _options;
    readonly object _lock = new();          // guards the queue and the model's adapter tables
    readonly Queue<GenerationStream> _waiting = new();
    readonly HashSet<string> _draining = new();
    readonly List<GenerationStream> _running = new();
    readonly AutoResetEvent _wake = new(false);
    readonly Thread _loop;
    readonly BatchForward _forward;
    readonly HashSet<int> _stopIds;
    volatile bool _stopping;
    long _order;

    /// <summary>An engine over <paramref name="model"/> (its adapters already loaded stay available), computing on <paramref name="compute"/>.</summary>
    public ServeEngine(PeftModel model, ComputeContext compute, EngineOptions? options = null)
    {
        _pm = model;
        _options = options ?? new EngineOptions();
        _options.Validate();
        Context = Math.Min(model.Model.Rope.MaxPositions, _options.MaxContext ?? int.MaxValue);
        _stopIds = new HashSet<int>(model.Model.Config.EosTokenIds);
        if (model.Tokenizer?.EosId is int eos) _stopIds.Add(eos);
        _forward = new BatchForward(model.Model, compute);
        _loop = new Thread(Loop) { IsBackground = true, Name = "peft-serve-scheduler" };
        _loop.Start();
    }

    public PeftModel Model => _pm;
    public EngineOptions Options => _options;

    /// <summary>Positions a sequence may use (prompt + generated tokens).</summary>
    public int Context { get; }

    /// <summary>Token ids that end a generation (EOS).</summary>
    public IReadOnlySet<int> StopIds => _stopIds;

    /// <summary>The adapters requests may name now (not those being unloaded).</summary>
    public IReadOnlyList<string> Adapters
    {
        get { lock (_lock) return _pm.Configs.Keys.Where(n => !_draining.Contains(n)).Order(StringComparer.Ordinal).ToList(); }
    }

    /// <summary>Steps run, and the most sequences and distinct adapters (the base counting as one) any step held.</summary>
    public (long Steps, int PeakSequences, int PeakAdapters) Stats => (Interlocked.Read(ref _steps), _peakSequences, _peakAdapters);
    long _steps;
    volatile int _peakSequences, _peakAdapters;

    /// <summary>Sequences in the running batch and waiting for it.</summary>
    public (int Running, int Waiting) Load { get { lock (_lock) return (_running.Count, _waiting.Count); } }

    /// <summary>
    /// Queues a request. Throws <see cref="PeftException"/> for a request that cannot run (unknown adapter, empty or
    /// too long prompt, bad sampling options) and <see cref="EngineBusyException"/> when the queue is full.
    /// </summary>
    public GenerationStream Submit(GenerationRequest request, CancellationToken ct = default)
    {
        if (_stopping) throw new ObjectDisposedException(nameof(ServeEngine));
        request.Sampling.Validate();
        if (request.Prompt.Count == 0) throw new PeftException("the prompt is empty: give at least one token");
        if (request.Prompt.Count >= Context)
            throw new ContextLengthException($"the prompt has {request.Prompt.Count} tokens; this model's context is {Context} tokens, which must also hold at least one generated token");
        if (request.MaxNewTokens < 1) throw new PeftException($"max_tokens must be ≥ 1, got {request.MaxNewTokens}");
        if (request.TopLogprobs is < 0 or > 20) throw new PeftException($"logprobs must be in 0…20, got {request.TopLogprobs}");
        int vocab = _pm.Model.Config.VocabSize;
        foreach (var id in request.Prompt)
            if ((uint)id >= (uint)vocab) throw new PeftException($"token id {id} is outside the vocabulary (size {vocab})");
        int maxNew = Math.Min(request.MaxNewTokens, Context - request.Prompt.Count);
        GenerationStream stream;
        lock (_lock)
        {
            if (request.Adapter != null && (_draining.Contains(request.Adapter) || !_pm.Configs.ContainsKey(request.Adapter)))
                throw new UnknownModelException($"the model '{request.Adapter}' does not exist (adapters: {string.Join(", ", _pm.Configs.Keys.Where(n => !_draining.Contains(n)))})");
            if (_running.Count + _waiting.Count >= _options.MaxBatch + _options.MaxQueue)
                throw new EngineBusyException($"the server is busy ({_running.Count} sequences running, {_waiting.Count} waiting); retry later");
            var use = _pm.Use(request.Adapter);
            stream = new GenerationStream(request, maxNew, _pm.Segment(0, 1, request.Adapter), use, ct) { Order = _order++ };
            _waiting.Enqueue(stream);
            stream.Cancelled.Register(() => _wake.Set());
        }
        _wake.Set();
        return stream;
    }

    /// <summary>Loads a PEFT adapter folder as <paramref name="name"/>; requests may name it at once.</summary>
    public AdapterLoadReport LoadAdapter(string name, string path)
    {
        lock (_lock)
        {
            if (_pm.Configs.ContainsKey(name)) throw new PeftException($"an adapter named '{name}' is already loaded");
            var active = _pm.Active;
            var report = _pm.LoadAdapter(path, name);
            _pm.SetActive(active);
            return report;
        }
    }

    /// <summary>Unloads an adapter: new requests may no longer name it at once; it is removed when the requests
    /// that use it have finished (others run on undisturbed).</summary>
    public async Task UnloadAdapterAsync(string name, CancellationToken ct = default)
    {
        lock (_lock)
        {
            if (!_pm.Configs.ContainsKey(name) || !_draining.Add(name)) throw new UnknownModelException($"no adapter named '{name}' is loaded");
        }
        try
        {
            while (_pm.UsersOf(name) > 0) await Task.Delay(5, ct);
            lock (_lock) _pm.Unload(name);
        }
        finally
        {
            lock (_lock) _draining.Remove(name);
        }
    }

    void Loop()
    {
        var ids = new List<int>();
        var positions = new List<int>();
        var rows = new List<Engine.SequenceRows>();
        var segments = new List<Nn.RowSegment>();
        var logits = new List<float[]>();
        var step = new List<GenerationStream>();
        bool longTurn = false;
        int vocab = _pm.Model.Config.VocabSize;
        while (!_stopping)
        {
            Admit();
            if (_running.Count == 0) { _wake.WaitOne(200); continue; }

            // Rows grouped by adapter (stable by arrival), one routing segment per adapter.
            _running.Sort((a, b) => string.CompareOrdinal(a.Request.Adapter, b.Request.Adapter) is var c && c != 0 ? c : a.Order.CompareTo(b.Order));
            ids.Clear(); positions.Clear(); rows.Clear(); segments.Clear();
            longTurn = !longTurn;
            LongRopeStep.Select(_running, _pm.Model.Rope.FactorSwitchLength, longTurn, step);
            while (logits.Count < step.Count) logits.Add(new float[vocab]);
            foreach (var s in step)
            {
                var (start, count) = LongRopeStep.Rows(s, _pm.Model.Rope.FactorSwitchLength);
                int row = ids.Count;
                for (int i = 0; i < count; i++) { ids.Add(s.Context[start + i]); positions.Add(start + i); }
                rows.Add(new SequenceRows(s.Cache!, row, count, start));
                if (segments.Count > 0 && segments[^1].Adapter == s.Request.Adapter)
                    segments[^1] = segments[^1] with { Count = segments[^1].Count + count };
                else segments.Add(s.Route with { Start = row, Count = count });
            }
            _peakSequences = Math.Max(_peakSequences, step.Count);
            _peakAdapters = Math.Max(_peakAdapters, segments.Count);
            Interlocked.Increment(ref _steps);
            try
            {
                _forward.Run(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ids), System.Runtime.InteropServices.CollectionsMarshal.AsSpan(positions),
                    rows, segments, logits);
            }
            catch (Exception e)
            {
                foreach (var s in _running) s.Finish(null, e);
                _running.Clear();
                continue;
            }

            for (int i = 0; i < step.Count; i++)
            {
                var s = step[i];
                s.Fed = rows[i].Start + rows[i].Count;
                var row = logits[i];
                int next = s.Sampler.Next(row, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(s.Context));
                s.Context.Add(next);
                s.Produced++;
                bool stop = _stopIds.Contains(next);
                s.Emit(new GeneratedToken(next, LmHead.LogProb(row, next), TopLogprobs(row, s.Request.TopLogprobs), stop));
                if (stop) s.Finish(FinishReasons.Stop);
                else if (s.Produced >= s.MaxNew) s.Finish(FinishReasons.Length);
            }
            _running.RemoveAll(s => s.Cache == null);
        }
        foreach (var s in _running) s.Finish(null, new ObjectDisposedException(nameof(ServeEngine)));
        _running.Clear();
    }

    /// <summary>Drops cancelled sequences, then moves waiting ones into the batch while slots and the step's prompt budget allow.</summary>
    void Admit()
    {
        foreach (var s in _running) if (s.Cancelled.IsCancellationRequested) s.Finish(null);
        _running.RemoveAll(s => s.Cache == null);
        lock (_lock)
        {
            int budget = _options.MaxStepTokens;
            while (_waiting.Count > 0 && _running.Count < _options.MaxBatch)
            {
                var s = _waiting.Peek();
                if (s.Cancelled.IsCancellationRequested) { _waiting.Dequeue().Finish(null); continue; }
                bool alone = _running.Count == 0 && budget == _options.MaxStepTokens;
                if (s.PromptTokens > budget && !alone) break;
                _waiting.Dequeue();
                budget -= s.PromptTokens;
                // The last generated token is never fed: the cache holds prompt + MaxNew − 1 positions.
                s.Cache = new KvCacheAttention(_pm.Model.Config, Math.Max(s.PromptTokens + s.MaxNew - 1, s.PromptTokens));
                _running.Add(s);
            }
        }
    }

    static IReadOnlyList<(int, double)> TopLogprobs(float[] logits, int k)
    {
        if (k == 0) return [];
        var best = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).Take(k).ToArray();
        return best.Select(i => (i, LmHead.LogProb(logits, i))).ToList();
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        _loop.Join();
        lock (_lock) while (_waiting.Count > 0) _waiting.Dequeue().Finish(null, new ObjectDisposedException(nameof(ServeEngine)));
        _forward.Dispose();
        _wake.Dispose();
    }
}

/// <summary>The request names a model (adapter) that is not loaded (HTTP 404).</summary>
public sealed class UnknownModelException(string message) : PeftException(message);

/// <summary>The prompt (with the tokens asked for) does not fit the model's context (HTTP 400, context_length_exceeded).</summary>
public sealed class ContextLengthException(string message) : PeftException(message);
