namespace Managed.Cli;

internal static class DevicesCommand
{
    public static int Run()
    {
        Console.WriteLine("cpu-simd: always");
        return 0;
    }
}
