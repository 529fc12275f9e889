using Xunit;
using Managed.Kernels.Devices;

namespace Managed.Tests.Devices;

public sealed class HostWorkersTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 1000)]
    [InlineData(4, 7)]
    public void EveryPartRunsOnce(int threads, int parts)
    {
        using var workers = new HostWorkers(threads);
        for (int call = 0; call < 500; call++)
        {
            var runs = new int[parts];
            workers.For(parts, p => Interlocked.Increment(ref runs[p]));
            Assert.All(runs, r => Assert.Equal(1, r));
        }
    }

    [Fact]
    public void WorkersTakePartsWhileTheCallerIsBusy()
    {
        using var workers = new HostWorkers(2, TimeSpan.FromSeconds(1));
        int caller = Environment.CurrentManagedThreadId, byWorker = 0;
        // The caller's part waits until another thread has run one: without a worker taking
        // parts this call would never return.
        using var done = new ManualResetEventSlim();
        workers.For(2, p =>
        {
            if (Environment.CurrentManagedThreadId == caller)
                Assert.True(done.Wait(TimeSpan.FromSeconds(20)), "no worker took a part");
            else
            {
                Interlocked.Increment(ref byWorker);
                done.Set();
            }
        });
        Assert.Equal(1, byWorker);
    }

    [Fact]
    public void SleepingWorkersWakeForTheNextCall()
    {
        using var workers = new HostWorkers(2, TimeSpan.Zero);
        for (int call = 0; call < 20; call++)
        {
            Thread.Sleep(2);   // the worker is asleep by now
            int caller = Environment.CurrentManagedThreadId;
            using var done = new ManualResetEventSlim();
            workers.For(2, p =>
            {
                if (Environment.CurrentManagedThreadId == caller)
                    Assert.True(done.Wait(TimeSpan.FromSeconds(20)), "the worker did not wake");
                else
                    done.Set();
            });
        }
    }

    [Fact]
    public void APartsExceptionReachesTheCallerAndTheTeamGoesOn()
    {
        using var workers = new HostWorkers(2);
        var e = Assert.Throws<InvalidOperationException>(() => workers.For(64, p =>
        {
            if (p == 17) throw new InvalidOperationException("part 17");
        }));
        Assert.Equal("part 17", e.Message);
        var runs = new int[64];
        workers.For(64, p => Interlocked.Increment(ref runs[p]));
        Assert.All(runs, r => Assert.Equal(1, r));
    }

    [Fact]
    public void CallsFromSeveralThreadsAllComplete()
    {
        using var workers = new HostWorkers(2);
        long total = 0;
        Parallel.For(0, 4, _ =>
        {
            for (int call = 0; call < 200; call++)
                workers.For(8, p => Interlocked.Add(ref total, p));
        });
        Assert.Equal(4 * 200 * 28, total);
    }

    [Fact]
    public void DisposeStopsTheWorkersAndLaterCallsThrow()
    {
        var workers = new HostWorkers(3);
        workers.For(8, _ => { });
        workers.Dispose();
        workers.Dispose();
        Assert.Throws<ObjectDisposedException>(() => workers.For(8, _ => { }));
    }

    [Fact]
    public void BadSizesThrow()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new HostWorkers(0));
        Assert.Throws<ArgumentOutOfRangeException>(
            () => new HostWorkers(2, TimeSpan.FromMilliseconds(-1)));
    }
}
