namespace Managed.Tensors; internal static class Placeholder {}
