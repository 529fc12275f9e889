using System.Runtime.CompilerServices;

// ILGPU's CPU accelerator emits a task type that touches the kernels' internal structs.
[assembly: InternalsVisibleTo("ILGPURuntime")]
[assembly: InternalsVisibleTo("Managed.Tests")]
