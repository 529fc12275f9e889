using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Managed.Kernels.Devices;

/// <summary>
/// A team of host threads for calls too small for <see cref="Parallel.For(int, int,
/// Action{int})"/>: a small model's decode step is about a hundred calls of a few
/// microseconds each, and waking a thread-pool worker for each cost more than the call. The
/// workers spin for <see cref="SpinTime"/> after each call (so the next call starts them in
/// well under a microsecond), then sleep until the next. Pass it in
/// <c>LinearOptions.Workers</c> and <c>DecodeOptions.Workers</c>; one caller at a time (a
/// call made while another runs, or from inside a part, runs its parts on its own thread).
/// </summary>
public sealed class HostWorkers : IDisposable
{
    private readonly Thread[] _threads;
    private readonly SemaphoreSlim[] _wake;
    private readonly int[] _sleeping;
    private readonly long _spinTicks;
    /// <summary>Most parts of one call on the team (more go to the thread pool).</summary>
    private const int PartMask = 0xFFFF;

    private Action<int>? _body;
    private int _busy;
    // The two words every part touches, on cache lines of their own: the claims (call
    // generation << 32 | next part << 16 | parts) and the count of parts finished.
    private PaddedLong _state;
    private PaddedLong _finished;
    private volatile bool _disposed;
    private ExceptionDispatchInfo? _error;

    /// <param name="threads">Threads in the team, the caller's included (1: every part
    /// runs on the caller).</param>
    /// <param name="spinTime">How long a worker spins for the next call before it sleeps;
    /// null: 2 ms.</param>
    /// <exception cref="ArgumentOutOfRangeException">threads is not positive or spinTime is
    /// negative.</exception>
    public HostWorkers(int threads, TimeSpan? spinTime = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        SpinTime = spinTime ?? TimeSpan.FromMilliseconds(2);
        ArgumentOutOfRangeException.ThrowIfLessThan(SpinTime, TimeSpan.Zero, nameof(spinTime));
        Threads = threads;
        _spinTicks = (long)(SpinTime.TotalSeconds * Stopwatch.Frequency);
        _threads = new Thread[threads - 1];
        _wake = new SemaphoreSlim[threads - 1];
        _sleeping = new int[threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            _wake[i] = new SemaphoreSlim(0);
            int worker = i;
            _threads[i] = new Thread(() => WorkerLoop(worker))
            {
                IsBackground = true,
                Name = $"Managed host worker {i + 1}",
            };
            _threads[i].Start();
        }
    }

    /// <summary>Threads in the team, the caller's included.</summary>
    public int Threads { get; }

    /// <summary>How long a worker spins for the next call before it sleeps.</summary>
    public TimeSpan SpinTime { get; }

    /// <summary>Runs body(0 .. parts − 1), the parts shared between the caller and the
    /// workers; returns when all are done. The first exception a part throws is rethrown.
    /// </summary>
    internal void For(int parts, Action<int> body)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (parts <= 1 || _threads.Length == 0 || parts > PartMask
            || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            if (parts > PartMask && _threads.Length > 0)
                Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = Threads },
                    body);
            else
                for (int p = 0; p < parts; p++) body(p);
            return;
        }
        try
        {
            _body = body;
            _error = null;
            Volatile.Write(ref _finished.Value, 0);
            long generation = (Volatile.Read(ref _state.Value) >> 32) + 1;
            Volatile.Write(ref _state.Value, generation << 32 | (uint)parts);
            for (int i = 0; i < _wake.Length; i++)
                if (Interlocked.Exchange(ref _sleeping[i], 0) == 1)
                    _wake[i].Release();
            RunParts(body);
            // Only parts a worker has claimed are waited for: a worker the scheduler has not
            // run yet claims none, and its late look at this call finds no part left.
            var spin = new SpinWait();
            while (Volatile.Read(ref _finished.Value) < parts)
                spin.SpinOnce(-1);
            _body = null;
            _error?.Throw();
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>Claims and runs parts of the call in <c>_state</c> until none is
    /// left. A claim is a compare-exchange of the whole word, so it only succeeds for the
    /// call whose body the claimant read (the body changes only after every part of a call
    /// has finished, and this one was not claimed yet).</summary>
    private void RunParts(Action<int>? body)
    {
        while (true)
        {
            long state = Volatile.Read(ref _state.Value);
            int parts = (int)(state & PartMask), next = (int)(state >> 16 & PartMask);
            if (next >= parts) return;
            body ??= Volatile.Read(ref _body);
            if (body is null || Interlocked.CompareExchange(ref _state.Value,
                    state + (1L << 16), state) != state)
            {
                body = null;   // another call may have begun: read its body again
                continue;
            }
            try
            {
                body(next);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, ExceptionDispatchInfo.Capture(e), null);
            }
            Interlocked.Increment(ref _finished.Value);
        }
    }

    private void WorkerLoop(int worker)
    {
        long seen = 0;
        while (true)
        {
            long start = Stopwatch.GetTimestamp();
            var spin = new SpinWait();
            // Spin for the next call, then sleep: announce it, look once more (a call may
            // have come between), and wait for the caller's release.
            while (Volatile.Read(ref _state.Value) >> 32 == seen && !_disposed)
            {
                if (Stopwatch.GetTimestamp() - start < _spinTicks)
                {
                    spin.SpinOnce(-1);
                    continue;
                }
                Interlocked.Exchange(ref _sleeping[worker], 1);   // a full fence before the load
                if (Volatile.Read(ref _state.Value) >> 32 != seen || _disposed)
                {
                    // Not released if the flag is still ours to clear; else take the release.
                    if (Interlocked.Exchange(ref _sleeping[worker], 0) == 0)
                        _wake[worker].Wait();
                    break;
                }
                _wake[worker].Wait();
                start = Stopwatch.GetTimestamp();
                spin = new SpinWait();
            }
            if (_disposed) return;
            seen = Volatile.Read(ref _state.Value) >> 32;
            RunParts(null);
        }
    }

    /// <summary>Stops the workers after the call in progress, if any (calls after it run on
    /// their caller's thread, or throw <see cref="ObjectDisposedException"/>).</summary>
    public void Dispose()
    {
        var spin = new SpinWait();
        while (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            if (_disposed) return;
            spin.SpinOnce(-1);
        }
        if (_disposed) return;
        _disposed = true;
        for (int i = 0; i < _wake.Length; i++)
            if (Interlocked.Exchange(ref _sleeping[i], 0) == 1)
                _wake[i].Release();
        foreach (var t in _threads)
            t.Join();
        foreach (var w in _wake)
            w.Dispose();
    }
}

/// <summary>A long alone on its 64-byte cache line (and the next, against the adjacent-line
/// prefetcher): the counters one thread writes while the other spins on them.</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit,
    Size = 256)]
internal struct PaddedLong
{
    [System.Runtime.InteropServices.FieldOffset(128)]
    public long Value;
}
