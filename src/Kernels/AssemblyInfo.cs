using System.Runtime.CompilerServices;

// ILGPU's CPU accelerator emits a task type that touches the kernels' internal structs.
[assembly: InternalsVisibleTo("ILGPURuntime")]
[assembly: InternalsVisibleTo("Managed.Tests")]
// The tensor type holds devices and hands kernels device views under their leases.
[assembly: InternalsVisibleTo("Managed.Tensors")]
// The front end's `devices` command writes each kernel's PTX for ptxas (KernelCompiler).
[assembly: InternalsVisibleTo("managed")]
// The model blocks upload token ids and positions through StagedUpload.
[assembly: InternalsVisibleTo("Managed.Models")]
