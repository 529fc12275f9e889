namespace Managed.Kernels; internal static class Placeholder {}
